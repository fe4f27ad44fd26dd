rule split_folds:
    input:
        store="results/{dataset}/store",
    output:
        "results/{dataset}/folds.tsv",
    log:
        "logs/split_folds/{dataset}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    params:
        k=lambda wc: dataset(wc)["folds"],
        seed=config["seed"],
    shell:
        "deeprc split --store {input.store} --out {output} --k {params.k} --seed {params.seed}"
        " > {log} 2>&1"


rule train_model:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/folds.tsv",
        experiment=config["experiment"],
    output:
        model="results/{dataset}/models/fold{fold}.pt",
    log:
        "logs/train_model/{dataset}/fold{fold}.log",
    benchmark:
        "results/{dataset}/benchmarks/train_model/fold{fold}.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=120,
    shell:
        "deeprc train --store {input.store} --folds {input.folds} --fold {wildcards.fold}"
        " --experiment {input.experiment} --out {output.model} --threads {threads}"
        " --no-progress > {log} 2>&1"


rule predict_fold:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/folds.tsv",
        model="results/{dataset}/models/fold{fold}.pt",
    output:
        directory("results/{dataset}/predictions/fold{fold}"),
    log:
        "logs/predict_fold/{dataset}/fold{fold}.log",
    benchmark:
        "results/{dataset}/benchmarks/predict_fold/fold{fold}.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=60,
    shell:
        "deeprc predict --store {input.store} --folds {input.folds} --fold {wildcards.fold}"
        " --model {input.model} --out {output} --threads {threads} > {log} 2>&1"
