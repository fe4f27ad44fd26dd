rule evaluate_model:
    input:
        lambda wc: expand(
            "results/{{dataset}}/predictions/fold{fold}",
            fold=range(dataset(wc)["folds"]),
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
