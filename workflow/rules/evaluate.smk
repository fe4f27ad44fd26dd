rule evaluate_model:
    input:
        lambda wc: expand(
            "results/{{dataset}}/predictions/fold{fold}",
            fold=range(n_folds(wc)),
        ),
    output:
        "results/{dataset}/metrics.json",
    log:
        "logs/evaluate_model/{dataset}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    shell:
        "deeprc evaluate {input:q} --out {output:q} > {log:q} 2>&1"


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
    shell:
        "deeprc baseline {wildcards.baseline} --store {input.store:q} --folds {input.folds:q}"
        " --fold {wildcards.fold} --out {output:q} > {log:q} 2>&1"


rule evaluate_baseline:
    input:
        lambda wc: expand(
            "results/{{dataset}}/baselines/{{baseline}}/fold{fold}",
            fold=range(n_folds(wc)),
        ),
    output:
        "results/{dataset}/baselines/{baseline}/metrics.json",
    log:
        "logs/evaluate_baseline/{dataset}/{baseline}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    shell:
        "deeprc evaluate {input:q} --out {output:q} > {log:q} 2>&1"


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
        title=lambda wc: shlex.quote(f"deeprc: {wc.dataset}"),
    shell:
        "deeprc report --store {input.store:q} --metrics {input.metrics:q} {params.baselines}"
        " --interpretation {input.interpretation:q} --title {params.title}"
        " --out {output:q} > {log:q} 2>&1"
