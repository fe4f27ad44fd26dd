"""Write immunarch_trb.tsv.gz, the real TRB background of configs/simulate/real_background.yaml.

    pip download pyimmunarch==0.1.1 --no-deps -d /tmp/pyimmunarch
    python data/real_background/make.py /tmp/pyimmunarch/pyimmunarch-0.1.1-py3-none-any.whl

The source is the `immdata` dataset that the immunarch R package ships and pyimmunarch 0.1.1
repackages (Apache License 2.0): 12 human TRB repertoires, 76,820 clonotypes. Each row becomes one
AIRR rearrangement; rows whose junction does not translate to its amino acids (frame shifts and
stops, marked there with '~' and '*') are written with productive F, not left out.
"""

import gzip
import io
import sys
import zipfile

import pandas as pd

with zipfile.ZipFile(sys.argv[1]) as wheel:
    rows = pd.read_parquet(io.BytesIO(wheel.read("pyimmunarch/_data/immdata.parquet")))
junction, junction_aa = rows["CDR3.nt"], rows["CDR3.aa"]
productive = (junction.str.len() == 3 * junction_aa.str.len()) & ~junction_aa.str.contains("[*~]")
airr = pd.DataFrame(
    {
        "sequence_id": rows["Sample"] + "_" + rows.groupby("Sample").cumcount().astype(str),
        "productive": productive.map({True: "T", False: "F"}),
        "locus": "TRB",
        "v_call": rows["V.name"],
        "j_call": rows["J.name"],
        "junction": junction,
        "junction_aa": junction_aa,
        "duplicate_count": rows["Clones"],
    }
)
with gzip.GzipFile("data/real_background/immunarch_trb.tsv.gz", "wb", mtime=0) as out:
    out.write(airr.to_csv(sep="\t", index=False).encode())
