# With config["ingest_shards"] > 1 the files are read in that many jobs side by side (every
# N-th file each), then joined into one store without reading them again: the same store as
# one ingest.


rule ingest_shard:
    input:
        unpack(ingest_inputs),
    output:
        shard=temp(directory("results/{dataset}/ingest_shards/{shard}")),
    log:
        "logs/ingest_shard/{dataset}/{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/ingest_shard/{shard}.tsv"
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=growing_runtime(
            INGEST_MINUTES_PER_GIB, 15, lambda wc: config["ingest_shards"]
        ),
    params:
        metadata=metadata_path,
        flags=ingest_flags,
        options=ingest_options,
        shards=config["ingest_shards"],
    shell:
        "printf '%s' {params.options:q} | deeprc ingest --options - --metadata {params.metadata:q}"
        " --out {output.shard:q} --shard {wildcards.shard}/{params.shards} {params.flags}"
        " --threads {threads} > {log:q} 2>&1"


rule ingest_repertoires:
    input:
        unpack(ingest_inputs),
        parts=lambda wc: parts(
            f"results/{wc.dataset}/ingest_shards/{{part}}", config["ingest_shards"]
        ),
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
        # the files, or with shards their parts (then a join: less work than reading)
        runtime=growing_runtime(
            INGEST_MINUTES_PER_GIB, 15, lambda wc: config["ingest_shards"]
        ),
    params:
        metadata=metadata_path,
        flags=ingest_flags,
        options=ingest_options,
        merge=merge_flag,
    shell:
        "printf '%s' {params.options:q} | deeprc ingest --options - --metadata {params.metadata:q}"
        " --out {output.store:q} {params.merge} {params.flags} --threads {threads}"
        " > {log:q} 2>&1"
