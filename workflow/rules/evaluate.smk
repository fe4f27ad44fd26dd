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
        "deeprc evaluate {input} --out {output} > {log} 2>&1"


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
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=60,
    shell:
        "deeprc baseline {wildcards.baseline} --store {input.store} --folds {input.folds}"
        " --fold {wildcards.fold} --out {output} > {log} 2>&1"


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
        "deeprc evaluate {input} --out {output} > {log} 2>&1"


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
        runtime=60,
    params:
        truth=lambda wc: (f"--truth {simulated_dir(wc)}" if is_simulated(wc) else ""),
        top=config["interpret"]["top"],
    shell:
        "deeprc interpret --store {input.store} --models {input.models}"
        " --predictions {input.predictions} --out {output} --top {params.top}"
        " {params.truth} > {log} 2>&1"


rule report:
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
        "logs/report/{dataset}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    params:
        baselines=lambda wc, input: " ".join(
            f"--baseline {name}={path}"
            for name, path in zip(config["baselines"], input.baselines)
        ),
    shell:
        "deeprc report --store {input.store} --metrics {input.metrics} {params.baselines}"
        " --interpretation {input.interpretation} --title 'deeprc: {wildcards.dataset}'"
        " --out {output} > {log} 2>&1"
