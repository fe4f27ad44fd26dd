rule simulate_dataset:
    input:
        config=lambda wc: dataset(wc)["simulate"],
    output:
        directory("results/{dataset}/simulated"),
    log:
        "logs/simulate_dataset/{dataset}.log",
    benchmark:
        "results/{dataset}/benchmarks/simulate_dataset.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=30,
    shell:
        "deeprc simulate --config {input.config:q} --out {output:q} --threads {threads}"
        " > {log:q} 2>&1"
