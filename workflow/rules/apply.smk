# The final model of each dataset (all labelled repertoires, an inner validation split), and
# cohorts scored with it (config apply:).


rule train_final:
    input:
        store="results/{dataset}/store",
        metrics="results/{dataset}/metrics.json",
        experiment=experiment_file(),
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


rule select_final:
    input:
        expand("results/{{dataset}}/final/seed{seed}.pt", seed=config["seeds"]),
    output:
        "results/{dataset}/final/model.pt",
    log:
        "logs/select_final/{dataset}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    shell:
        "deeprc select-model {input:q} --out {output:q} > {log:q} 2>&1"


rule ingest_cohort:
    input:
        unpack(cohort_inputs),
    output:
        store=directory("results/apply/{cohort}/store"),
    log:
        "logs/ingest_cohort/{cohort}.log",
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=growing_runtime(INGEST_MINUTES_PER_GIB, 15),
    params:
        flags=cohort_flags,
        options=lambda wc: json.dumps(cohort_ingest(wc)),
    shell:
        "printf '%s' {params.options:q} | deeprc ingest --options - --metadata {input.metadata:q}"
        " --out {output.store:q} {params.flags} --threads {threads} > {log:q} 2>&1"


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


rule evaluate_cohort:
    input:
        "results/apply/{cohort}/predictions",
    output:
        "results/apply/{cohort}/metrics.json",
    log:
        "logs/evaluate_cohort/{cohort}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    shell:
        "deeprc evaluate {input:q} --out {output:q} > {log:q} 2>&1"


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
        " {params.metrics} --title {params.title} --out {output:q} > {log:q} 2>&1"
