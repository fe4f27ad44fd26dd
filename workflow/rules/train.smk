rule split_folds:
    input:
        store="results/{dataset}/store",
        test_ids=lambda wc: dataset(wc)["test_ids"] or [],
    output:
        "results/{dataset}/folds.tsv",
    log:
        "logs/split_folds/{dataset}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    params:
        flags=split_flags,
        seed=config["seed"],
    shell:
        "deeprc split --store {input.store:q} --out {output:q} {params.flags}"
        " --seed {params.seed} > {log:q} 2>&1"


rule train_model:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/folds.tsv",
        experiment=dataset_experiment,
    output:
        model="results/{dataset}/models/fold{fold}/seed{seed}.pt",
    log:
        "logs/train_model/{dataset}/fold{fold}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train_model/fold{fold}/seed{seed}.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=growing_runtime(TRAIN_MINUTES_PER_GIB, 120),
        gpu=config["gpu"],
    params:
        device="cuda" if config["gpu"] else "cpu",
        # train_control: --permute-labels (a negative control)
        control="",
    shell:
        "deeprc train --store {input.store:q} --folds {input.folds:q} --fold {wildcards.fold}"
        " --experiment {input.experiment:q} --seed {wildcards.seed} --out {output.model:q}"
        " --device {params.device} --threads {threads} {params.control} > {log:q} 2>&1"


# deeprc select-model, written once (select_model_repeat, apply's select_final)
rule select_model:
    input:
        expand(
            "results/{{dataset}}/models/fold{{fold}}/seed{seed}.pt",
            seed=config["seeds"],
        ),
    output:
        "results/{dataset}/models/fold{fold}.pt",
    log:
        "logs/select_model/{dataset}/fold{fold}.log",
    localrule: True
    conda:
        "../envs/deeprc.yaml"
    shell:
        "deeprc select-model {input:q} --out {output:q} > {log:q} 2>&1"


rule predict_group:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/folds.tsv",
        model="results/{dataset}/models/fold{fold}.pt",
    output:
        temp(directory("results/{dataset}/predictions/fold{fold}.groups/{group}")),
    log:
        "logs/predict_group/{dataset}/fold{fold}/{group}.log",
    benchmark:
        "results/{dataset}/benchmarks/predict_group/fold{fold}/{group}.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        # the store holds every fold: this group scores 1 / (folds x groups) of it
        runtime=growing_runtime(
            PREDICT_MINUTES_PER_GIB,
            15,
            lambda wc: n_folds(wc) * config["predict_groups"],
        ),
    params:
        groups=config["predict_groups"],
    shell:
        "deeprc predict --store {input.store:q} --folds {input.folds:q} --fold {wildcards.fold}"
        " --model {input.model:q} --out {output:q} --group {wildcards.group}/{params.groups}"
        " --threads {threads} > {log:q} 2>&1"


# the fold's test repertoires; with config["predict_groups"] > 1 scored in that many jobs
rule predict_fold:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/folds.tsv",
        model="results/{dataset}/models/fold{fold}.pt",
        parts=prediction_groups,
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
        runtime=growing_runtime(PREDICT_MINUTES_PER_GIB, 15, n_folds),
    params:
        merge=merge_flag,
    shell:
        "deeprc predict --store {input.store:q} --folds {input.folds:q} --fold {wildcards.fold}"
        " --model {input.model:q} --out {output:q} {params.merge} --threads {threads}"
        " > {log:q} 2>&1"


# ------------------------------------------------- the negative control (negative_control: true)
# Each fold's model trained again, with the first training seed, on labels permuted among its
# training and validation repertoires, and scored on the fold's test repertoires.


use rule train_model as train_control with:
    output:
        model="results/{dataset}/negative_control/models/fold{fold}/seed{seed}.pt",
    log:
        "logs/train_control/{dataset}/fold{fold}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train_control/fold{fold}/seed{seed}.tsv"
    params:
        control=f"--permute-labels {config['seed']}",


use rule predict_fold as predict_control with:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/folds.tsv",
        model=control_model,
        parts=[],
    output:
        directory("results/{dataset}/negative_control/predictions/fold{fold}"),
    log:
        "logs/predict_control/{dataset}/fold{fold}.log",
    benchmark:
        "results/{dataset}/benchmarks/predict_control/fold{fold}.tsv"


# ------------------------------------------------------ repeated splits (config split_seeds)
# The same cross-validation with another split seed, under results/<dataset>/split_seeds/<seed>/.


use rule split_folds as split_folds_repeat with:
    output:
        "results/{dataset}/split_seeds/{split_seed}/folds.tsv",
    log:
        "logs/split_folds_repeat/{dataset}/{split_seed}.log",
    params:
        seed=lambda wc: wc.split_seed,


use rule train_model as train_model_repeat with:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/split_seeds/{split_seed}/folds.tsv",
        experiment=dataset_experiment,
    output:
        model="results/{dataset}/split_seeds/{split_seed}/models/fold{fold}/seed{seed}.pt",
    log:
        "logs/train_model_repeat/{dataset}/{split_seed}/fold{fold}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train_model_repeat/{split_seed}/fold{fold}/seed{seed}.tsv"


use rule select_model as select_model_repeat with:
    input:
        expand(
            "results/{{dataset}}/split_seeds/{{split_seed}}/models/fold{{fold}}/seed{seed}.pt",
            seed=config["seeds"],
        ),
    output:
        "results/{dataset}/split_seeds/{split_seed}/models/fold{fold}.pt",
    log:
        "logs/select_model_repeat/{dataset}/{split_seed}/fold{fold}.log",


use rule predict_group as predict_group_repeat with:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/split_seeds/{split_seed}/folds.tsv",
        model="results/{dataset}/split_seeds/{split_seed}/models/fold{fold}.pt",
    output:
        temp(
            directory(
                "results/{dataset}/split_seeds/{split_seed}/predictions/fold{fold}.groups/{group}"
            )
        ),
    log:
        "logs/predict_group_repeat/{dataset}/{split_seed}/fold{fold}/{group}.log",
    benchmark:
        "results/{dataset}/benchmarks/predict_group_repeat/{split_seed}/fold{fold}/{group}.tsv"


use rule predict_fold as predict_fold_repeat with:
    input:
        store="results/{dataset}/store",
        folds="results/{dataset}/split_seeds/{split_seed}/folds.tsv",
        model="results/{dataset}/split_seeds/{split_seed}/models/fold{fold}.pt",
        parts=prediction_groups,
    output:
        directory("results/{dataset}/split_seeds/{split_seed}/predictions/fold{fold}"),
    log:
        "logs/predict_fold_repeat/{dataset}/{split_seed}/fold{fold}.log",
    benchmark:
        "results/{dataset}/benchmarks/predict_fold_repeat/{split_seed}/fold{fold}.tsv"
