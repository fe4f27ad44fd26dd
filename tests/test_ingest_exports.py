"""immunoSEQ (v2 and v3 columns) and MiXCR clonotype tables are read by their header, with IMGT
gene names and every dropped row counted, as for AIRR files."""

from __future__ import annotations

import pandas as pd
import pytest

from deeprc.store import Store

IMMUNOSEQ_V2 = pd.DataFrame(
    {
        "nucleotide": ["ACGT"] * 5,
        "aminoAcid": ["CASSLGQAYEQYF", "CASSPDRGNTEAFF", "", "CASS*GQYF", "CASSLGQAYEQYF"],
        "count (templates/reads)": ["12", "3", "7", "1", "2"],
        "vGeneName": ["TCRBV07-02", "TCRBV01-01", "TCRBV05-01", "TCRBV05-01", "unresolved"],
        "jGeneName": ["TCRBJ02-07", "TCRBJ01-01", "TCRBJ02-01", "TCRBJ02-01", "TCRBJ02-07"],
        "sequenceStatus": ["In", "In", "Out", "Stop", "In"],
    }
)
IMMUNOSEQ_V3 = pd.DataFrame(
    {
        "rearrangement": ["ACGT"] * 4,
        "amino_acid": ["CASSLGQAYEQYF", "CASSPDRGNTEAFF", "", "CASRRF"],
        "templates": ["12", "3", "7", "4"],
        "v_resolved": ["TCRBV07-02*01", "TCRBV12-03/12-04", "TCRBV05-01", "TCRBV05-01*01"],
        "j_resolved": ["TCRBJ02-07*01", "TCRBJ01-01", "TCRBJ02-01", "TCRBJ02-01*01"],
        "frame_type": ["In", "In", "Out", "In"],
    }
)
MIXCR = pd.DataFrame(
    {
        "cloneId": ["0", "1", "2"],
        "cloneCount": ["120", "30", "5"],
        "allVHitsWithScore": ["TRBV7-2*00(1520.3),TRBV7-3*00(1400)", "TRBV12-3*00(240)", ""],
        "allJHitsWithScore": ["TRBJ2-7*00(300)", "TRBJ1-1*00(280)", "TRBJ2-1*00(250)"],
        "aaSeqCDR3": ["CASSLGQAYEQYF", "CASS_GQYF", "CASSPDRGNTEAFF"],
    }
)
# per layout: (kept junction, V, J, count) in file order, and the dropped rows by reason
EXPECTED = {
    "immunoseq_v2.tsv": (
        [("CASSLGQAYEQYF", "TRBV7-2", "TRBJ2-7", 12), ("CASSPDRGNTEAFF", "TRBV1", "TRBJ1-1", 3),
         ("CASSLGQAYEQYF", "", "TRBJ2-7", 2)],
        {"non_productive": 2},
    ),
    "immunoseq_v3.tsv.gz": (
        [("CASSLGQAYEQYF", "TRBV7-2*01", "TRBJ2-7*01", 12),
         ("CASSPDRGNTEAFF", "TCRBV12-03/12-04", "TRBJ1-1", 3),
         ("CASRRF", "TRBV5-1*01", "TRBJ2-1*01", 4)],
        {"non_productive": 1},
    ),
    "mixcr.tsv": (
        [("CASSLGQAYEQYF", "TRBV7-2", "TRBJ2-7", 120), ("CASSPDRGNTEAFF", "", "TRBJ2-1", 5)],
        {"invalid_character": 1},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    for name, table in zip(EXPECTED, (IMMUNOSEQ_V2, IMMUNOSEQ_V3, MIXCR), strict=True):
        table.to_csv(root / name, sep="\t", index=False)
    (root / "metadata.tsv").write_text(
        "repertoire_id\tfile\tstatus\n"
        + "".join(f"r{i}\t{name}\t{i % 2}\n" for i, name in enumerate(EXPECTED))
    )
    return root


def test_each_export_layout_is_read_by_its_header_with_imgt_gene_names(exported, h):
    report, out = h.run_ingest(exported / "metadata.tsv", label_column="status")
    store = Store(out)
    for i, (name, (rows, dropped)) in enumerate(EXPECTED.items()):
        kept = store.sequences(i)
        got = list(zip(kept["junction_aa"], kept["v_call"], kept["j_call"],
                       kept["duplicate_count"], strict=True))  # fmt: skip
        assert got == rows, name
        line = report.iloc[i]
        assert {r: int(line[r]) for r in dropped} == dropped, name
        assert line["rows_read"] == len(rows) + sum(dropped.values()), name
    assert report["junction_column"].tolist() == ["aminoAcid", "amino_acid", "aaSeqCDR3"]
    # gene-level names in the store's vocabulary: alleles stripped, the ambiguous call kept
    assert {"TRBV7-2", "TRBV1", "TRBV5-1", "TCRBV12-03/12-04"} <= set(store.gene_names["v"])


def test_an_export_in_the_data_directory_without_a_metadata_row_is_named(exported, h, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    IMMUNOSEQ_V2.to_csv(data / "listed.tsv", sep="\t", index=False)
    MIXCR.to_csv(data / "forgotten.tsv", sep="\t", index=False)
    (data / "metadata.tsv").write_text("repertoire_id\tfile\tstatus\nr0\tlisted.tsv\t1\n")
    with pytest.raises(Exception, match=r"no row in metadata .*\['forgotten.tsv'\]"):
        h.run_ingest(data / "metadata.tsv", label_column="status")
