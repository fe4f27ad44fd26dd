rule ingest_repertoires:
    input:
        unpack(ingest_inputs),
    output:
        store=directory("results/{dataset}/store"),
    log:
        "logs/ingest_repertoires/{dataset}.log",
    benchmark:
        "results/{dataset}/benchmarks/ingest_repertoires.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=60,
    params:
        metadata=metadata_path,
        flags=ingest_flags,
    shell:
        "deeprc ingest --metadata {params.metadata:q} --out {output.store} {params.flags}"
        " --threads {threads} > {log} 2>&1"
