# deeprc evaluate, written once: the model's cross-validated metrics, compared with each
# baseline's. evaluate_baseline, evaluate_control and apply's evaluate_recipe and
# evaluate_cohort are this rule with other predictions and no baselines (no --compare).
rule evaluate_model:
    input:
        predictions=fold_outputs("{results}/predictions/fold{fold}"),
        baselines=baseline_metrics,
    output:
        "results/{dataset}/metrics.json",
    log:
        "logs/evaluate_model/{dataset}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    params:
        predictions=lambda wc, input: quoted_paths(input.predictions),
        compare=compare_flags,
    shell:
        "deeprc evaluate {params.predictions} {params.compare} --out {output:q} > {log:q} 2>&1"


rule baseline_fold:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/folds.tsv",
    output:
        directory("results/{dataset}/baselines/{baseline}/fold{fold}"),
    log:
        "logs/baseline_fold/{dataset}/{baseline}/fold{fold}.log",
    benchmark:
        "results/{dataset}/benchmarks/baseline_fold/{baseline}/fold{fold}.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 1
    resources:
        # kmer4_logistic: 4.2 GiB at 2 x 10^8 rows (docs/benchmarks.md)
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=growing_runtime(BASELINE_MINUTES_PER_GIB, 30),
    params:
        name=lambda wc: wc.baseline,
        target="",
    shell:
        "deeprc baseline {params.name} {params.target} --store {input.store:q}"
        " --folds {input.folds:q} --fold {wildcards.fold} --out {output:q} > {log:q} 2>&1"


use rule evaluate_model as evaluate_baseline with:
    input:
        predictions=fold_outputs("{results}/baselines/{baseline}/fold{fold}"),
        baselines=[],
    output:
        "results/{dataset}/baselines/{baseline}/metrics.json",
    log:
        "logs/evaluate_baseline/{dataset}/{baseline}.log",
    localrule: True


rule interpret_model:
    input:
        unpack(interpret_inputs),
    output:
        directory("results/{dataset}/interpretation"),
    log:
        "logs/interpret_model/{dataset}.log",
    benchmark:
        "results/{dataset}/benchmarks/interpret_model.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=growing_runtime(INTERPRET_MINUTES_PER_GIB, 30),
    params:
        truth=truth_flag,
        top=config["interpret"]["top"],
    shell:
        "deeprc interpret --store {input.store:q} --models {input.models:q}"
        " --predictions {input.predictions:q} --out {output:q} --top {params.top}"
        " {params.truth} > {log:q} 2>&1"


rule render_report:
    input:
        store="results/{dataset}/store",
        metrics="results/{dataset}/metrics.json",
        baselines=expand(
            "results/{{dataset}}/baselines/{baseline}/metrics.json",
            baseline=config["baselines"],
        ),
        interpretation="results/{dataset}/interpretation",
        negative_control=negative_control_metrics,
        repeats=lambda wc: [path for _, _, path in repeated_metrics(wc)],
        targets=lambda wc: [path for _, path in target_metrics(wc)],
    output:
        "results/{dataset}/report.html",
    log:
        "logs/render_report/{dataset}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    params:
        baselines=lambda wc, input: " ".join(
            shlex.quote(f"--baseline={name}={path}")
            for name, path in zip(config["baselines"], input.baselines)
        ),
        negative_control=negative_control_flag,
        repeats=repeat_flags,
        targets=target_flags,
        title=lambda wc: shlex.quote(f"deeprc: {wc.dataset}"),
    shell:
        "deeprc report --store {input.store:q} --metrics {input.metrics:q} {params.baselines}"
        " {params.negative_control} {params.repeats} {params.targets}"
        " --interpretation {input.interpretation:q} --title {params.title}"
        " --out {output:q} > {log:q} 2>&1"


# ------------------------------------------ targets beyond the label (a dataset's targets:)


use rule baseline_fold as target_baseline_fold with:
    output:
        directory(
            "results/{dataset}/targets/{target}/baselines/{target_baseline}/fold{fold}"
        ),
    log:
        "logs/target_baseline_fold/{dataset}/{target}/{target_baseline}/fold{fold}.log",
    benchmark:
        "results/{dataset}/benchmarks/target_baseline_fold/{target}/{target_baseline}/fold{fold}.tsv"
    params:
        name=lambda wc: wc.target_baseline,
        target=lambda wc: f"--target {shlex.quote(wc.target)}",


use rule evaluate_model as evaluate_target_baseline with:
    input:
        predictions=fold_outputs(
            "{results}/targets/{target}/baselines/{target_baseline}/fold{fold}"
        ),
        baselines=[],
    output:
        "results/{dataset}/targets/{target}/baselines/{target_baseline}/metrics.json",
    log:
        "logs/evaluate_target_baseline/{dataset}/{target}/{target_baseline}.log",
    localrule: True


# the model's predictions of a further target lie in each fold's predictions/targets/<target>
use rule evaluate_model as evaluate_target_model with:
    input:
        predictions=fold_outputs("{results}/predictions/fold{fold}"),
        baselines=[],
    output:
        "results/{dataset}/targets/{target}/metrics.json",
    log:
        "logs/evaluate_target_model/{dataset}/{target}.log",
    localrule: True
    params:
        predictions=lambda wc, input: quoted_paths(
            [f"{path}/targets/{wc.target}" for path in input.predictions]
        ),
        compare="",


# ------------------------------------------------- the negative control (negative_control: true)


use rule evaluate_model as evaluate_control with:
    input:
        predictions=fold_outputs(
            "results/{dataset}/negative_control/predictions/fold{fold}"
        ),
        baselines=[],
    output:
        "results/{dataset}/negative_control/metrics.json",
    log:
        "logs/evaluate_control/{dataset}.log",
    localrule: True


# ------------------------------------------------------ repeated splits (config split_seeds)


use rule evaluate_model as evaluate_model_repeat with:
    output:
        "results/{dataset}/split_seeds/{split_seed}/metrics.json",
    log:
        "logs/evaluate_model_repeat/{dataset}/{split_seed}.log",


use rule baseline_fold as baseline_fold_repeat with:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/split_seeds/{split_seed}/folds.tsv",
    output:
        directory(
            "results/{dataset}/split_seeds/{split_seed}/baselines/{baseline}/fold{fold}"
        ),
    log:
        "logs/baseline_fold_repeat/{dataset}/{split_seed}/{baseline}/fold{fold}.log",
    benchmark:
        "results/{dataset}/benchmarks/baseline_fold_repeat/{split_seed}/{baseline}/fold{fold}.tsv"


use rule evaluate_baseline as evaluate_baseline_repeat with:
    output:
        "results/{dataset}/split_seeds/{split_seed}/baselines/{baseline}/metrics.json",
    log:
        "logs/evaluate_baseline_repeat/{dataset}/{split_seed}/{baseline}.log",
