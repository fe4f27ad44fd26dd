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
        options=ingest_options,
    shell:
        "printf '%s' {params.options:q} | deeprc ingest --options - --metadata {params.metadata:q}"
        " --out {output.store:q} {params.flags} --threads {threads} > {log:q} 2>&1"
