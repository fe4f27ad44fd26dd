"""Write mira_trb.tsv.gz, the antigen-specific TRB clonotypes of configs/simulate/antigen_mira_*.

    pip download tcrdist3==0.3 --no-deps -d /tmp/tcrdist3
    python data/antigen_specific/make.py /tmp/tcrdist3/tcrdist3-0.3-py3-none-any.whl

The source is the MIRA SARS-CoV-2 epitope-specific TCRs that tcrdist3 0.3 ships
(tcrdist/data/covid19/mira_epitope_*.tcrdist3.csv, from Adaptive Biotechnologies' ImmuneCODE
release). A row is usable when its CDR3 (already the AIRR junction) is C, the 20 amino acids,
F or W (rows without the anchors are left out, not repaired), its read translates to it in some
frame (productive), and its V and J genes are known TRB genes; each set keeps its distinct
(junction_aa, V gene, J gene). The sets are ranked by
that count: the 2nd and 3rd largest are the presets' signals, the 4th and 5th are kept for
checking (never tuned on); the largest is left out. Prints every set's count.
"""

import gzip
import io
import re
import sys
import zipfile

import pandas as pd

FILE = re.compile(r"tcrdist/data/covid19/mira_epitope_(\d+)_\d+_([A-Z]+)[A-Z_]*\.tcrdist3\.csv")
# tcrdist3 writes Adaptive's two-gene calls TCRBV12-03/12-04 and TCRBV06-02/06-03 under these
# names (its db/adaptive_imgt_mapping.csv; TRBV12-1 is a pseudogene): the gene is not known
AMBIGUOUS = ["TRBV12-1", "TRBV6-2"]
CODE = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODON = dict(zip((a + b + c for a in "TCAG" for b in "TCAG" for c in "TCAG"), CODE, strict=True))


def translate(nt: str) -> str:
    return "".join(CODON.get(nt[k : k + 3], "X") for k in range(0, len(nt) - 2, 3))


def gene(call: pd.Series) -> pd.Series:
    """IMGT gene name: allele dropped, zero padding gone (TRBV07-1*01 -> TRBV7-1), as in the
    real background."""
    return call.fillna("").str.split("*").str[0].str.replace(r"(?<=\D)0+(?=\d)", "", regex=True)


def clonotypes(table: bytes) -> pd.DataFrame:
    """One set's distinct usable clonotypes."""
    rows = pd.read_csv(io.BytesIO(table), dtype=str)
    junction_aa, read = rows["cdr3_b_aa"].fillna(""), rows["cdr3_b_nucseq"].fillna("")
    v_call, j_call = gene(rows["v_b_gene"]), gene(rows["j_b_gene"])
    pairs = zip(junction_aa, read, strict=True)
    in_frame = [any(aa in translate(nt[k:]) for k in range(3)) for aa, nt in pairs]
    usable = (
        junction_aa.str.fullmatch("C[ACDEFGHIKLMNPQRSTVWY]*[FW]")
        & pd.Series(in_frame, index=rows.index)
        & v_call.str.fullmatch(r"TRBV[\d-]+")
        & ~v_call.isin(AMBIGUOUS)
        & j_call.str.fullmatch(r"TRBJ[\d-]+")
    )
    kept = pd.DataFrame({"junction_aa": junction_aa, "v_call": v_call, "j_call": j_call})[usable]
    return kept.drop_duplicates()


with zipfile.ZipFile(sys.argv[1]) as wheel:
    sets = {
        f"mira_{match[1]}_{match[2]}": clonotypes(wheel.read(path))
        for path in wheel.namelist()
        if (match := FILE.fullmatch(path))
    }
ranked = sorted(sets, key=lambda name: (-len(sets[name]), name))
for rank, name in enumerate(ranked, 1):
    print(f"{rank}\t{name}\t{len(sets[name])}")
extract = pd.concat([sets[name].assign(epitope_set=name) for name in ranked[1:5]])
extract = extract.sort_values(["epitope_set", "junction_aa", "v_call", "j_call"])
with gzip.GzipFile("data/antigen_specific/mira_trb.tsv.gz", "wb", mtime=0) as out:
    out.write(extract.to_csv(sep="\t", index=False).encode())
