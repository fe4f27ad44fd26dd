# deeprc ingest, written once: a metadata table and the files it names read into a store, the
# row filters (an ingest: block) on standard input. As it is, it reads a cohort to score
# (config apply:, with the ingest: block of the dataset whose model scores it); the rules below
# read a dataset with it.
rule ingest_cohort:
    input:
        unpack(cohort_inputs),
    output:
        directory("results/apply/{cohort}/store"),
    log:
        "logs/ingest_cohort/{cohort}.log",
    conda:
        "../envs/deeprc.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=growing_runtime(INGEST_MINUTES_PER_GIB, 15),
    params:
        metadata=lambda wc: cohort(wc)["metadata"],
        flags=cohort_flags,
        options=lambda wc: json.dumps(cohort_ingest(wc)),
        # --shard K/N, --merge and the shards, or nothing: the whole table in one job
        sharding="",
    shell:
        "printf '%s' {params.options:q} | deeprc ingest --options - --metadata {params.metadata:q}"
        " --out {output:q} {params.sharding} {params.flags} --threads {threads} > {log:q} 2>&1"


# A dataset's store. With config["ingest_shards"] > 1 the files are read in that many jobs side
# by side (ingest_shard, every N-th file each), then joined into one store without reading them
# again: the same store as one ingest.
use rule ingest_cohort as ingest_repertoires with:
    input:
        unpack(ingest_inputs),
        parts=lambda wc: parts(
            f"results/{wc.dataset}/ingest_shards/{{part}}", config["ingest_shards"]
        ),
    output:
        directory("results/{dataset}/store"),
    log:
        "logs/ingest_repertoires/{dataset}.log",
    benchmark:
        "results/{dataset}/benchmarks/ingest_repertoires.tsv"
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
        sharding=merge_flag,


use rule ingest_repertoires as ingest_shard with:
    input:
        unpack(ingest_inputs),
    output:
        temp(directory("results/{dataset}/ingest_shards/{shard}")),
    log:
        "logs/ingest_shard/{dataset}/{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/ingest_shard/{shard}.tsv"
    params:
        sharding=lambda wc: f"--shard {wc.shard}/{config['ingest_shards']}",
