# The final model of each dataset (all labelled repertoires, an inner validation split), and
# cohorts scored with it (config apply:).


# The cross-validated metrics of the recipe, kept in the final model's file: the evaluation of
# metrics.json without its comparisons with the baselines, so that the final model (and the
# cohorts it scores) need not wait for the baselines.
use rule evaluate_model as evaluate_recipe with:
    input:
        predictions=fold_outputs("{results}/predictions/fold{fold}"),
        baselines=[],
    output:
        "results/{dataset}/final/cv_metrics.json",
    log:
        "logs/evaluate_recipe/{dataset}.log",
    localrule: True


rule train_final:
    input:
        store="results/{dataset}/store",
        metrics="results/{dataset}/final/cv_metrics.json",
        experiment=dataset_experiment,
    output:
        model="results/{dataset}/final/seed{seed}.pt",
    log:
        "logs/train_final/{dataset}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train_final/seed{seed}.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=growing_runtime(TRAIN_MINUTES_PER_GIB, 120),
        gpu=config["gpu"],
    params:
        device="cuda" if config["gpu"] else "cpu",
        split_seed=config["seed"],
    shell:
        "deeprc train --store {input.store:q} --all --split-seed {params.split_seed}"
        " --cv-metrics {input.metrics:q} --experiment {input.experiment:q}"
        " --seed {wildcards.seed} --out {output.model:q} --device {params.device}"
        " --threads {threads} > {log:q} 2>&1"


use rule select_model as select_final with:
    input:
        expand("results/{{dataset}}/final/seed{seed}.pt", seed=config["seeds"]),
    output:
        "results/{dataset}/final/model.pt",
    log:
        "logs/select_final/{dataset}.log",
    localrule: True


# ingest_cohort (rules/ingest.smk): the cohort's store


rule score_cohort:
    input:
        store="results/apply/{cohort}/store",
        model=final_model,
    output:
        directory("results/apply/{cohort}/predictions"),
    log:
        "logs/score_cohort/{cohort}.log",
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=growing_runtime(PREDICT_MINUTES_PER_GIB, 15),
    shell:
        "deeprc predict --store {input.store:q} --model {input.model:q} --out {output:q}"
        " --threads {threads} > {log:q} 2>&1"


use rule evaluate_model as evaluate_cohort with:
    input:
        predictions="results/apply/{cohort}/predictions",
        baselines=[],
    output:
        "results/apply/{cohort}/metrics.json",
    log:
        "logs/evaluate_cohort/{cohort}.log",
    localrule: True


# every unique clonotype of the cohort ranked by its largest attention score
rule rank_cohort:
    input:
        "results/apply/{cohort}/predictions",
    output:
        "results/apply/{cohort}/clonotypes.tsv",
    log:
        "logs/rank_cohort/{cohort}.log",
    conda:
        "../envs/deeprc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=growing_runtime(INTERPRET_MINUTES_PER_GIB, 15),
    shell:
        "deeprc rank-sequences {input:q} --out {output:q} > {log:q} 2>&1"


# integrated gradients over the cohort's most attended sequences, with the final model
rule interpret_cohort:
    input:
        store="results/apply/{cohort}/store",
        model=final_model,
        predictions="results/apply/{cohort}/predictions",
    output:
        directory("results/apply/{cohort}/interpretation"),
    log:
        "logs/interpret_cohort/{cohort}.log",
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=growing_runtime(INTERPRET_MINUTES_PER_GIB, 30),
    params:
        top=config["interpret"]["top"],
    shell:
        "deeprc interpret --store {input.store:q} --models {input.model:q}"
        " --predictions {input.predictions:q} --out {output:q} --top {params.top}"
        " > {log:q} 2>&1"


rule render_cohort_report:
    input:
        unpack(cohort_report_inputs),
    output:
        "results/apply/{cohort}/report.html",
    log:
        "logs/render_cohort_report/{cohort}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    params:
        metrics=lambda wc, input: (
            f"--metrics {shlex.quote(input.metrics)}"
            if "metrics" in input.keys()
            else ""
        ),
        title=lambda wc: shlex.quote(f"deeprc: {wc.cohort} scored"),
    shell:
        "deeprc report --store {input.store:q} --predictions {input.predictions:q}"
        " {params.metrics} --interpretation {input.interpretation:q} --title {params.title}"
        " --out {output:q} > {log:q} 2>&1"
