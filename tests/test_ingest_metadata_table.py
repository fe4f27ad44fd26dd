"""One reader of metadata tables: deeprc ingest and the workflow's configuration check find the
same columns and the same files in a table with a byte order mark, padded names, commas or
tabs (deeprc.ingest.metadata.read_metadata_table)."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from conftest import ROOT, quiet, rec, snakemake, write_airr

from deeprc.errors import InputError
from deeprc.ingest.metadata import read_metadata, read_metadata_table
from deeprc.ingest.options import IngestOptions

EXAMPLE = ROOT / "data" / "example"

# name: (text, the columns as written, the file column)
TABLES = {
    # Excel on Windows: a byte order mark; a column name and the file names padded with spaces
    "padded.tsv": (
        "\ufeffrepertoire_id\t file \tstatus\nr1\t a.tsv \tpositive\nr2\tb.tsv  \tnegative\n",
        ["repertoire_id", " file ", "status"],
        " file ",
    ),
    "commas.csv": (
        "repertoire_id,file,status\nr1, a.tsv,positive\nr2,b.tsv,negative\n",
        ["repertoire_id", "file", "status"],
        "file",
    ),
    # tab-separated by its name, though its first line holds no tab: one column, its comma
    # part of the name
    "one_column.tsv": ("file,note\na.tsv\n b.tsv\n", ["file,note"], "file,note"),
    # tab-separated by its first line, whatever its name; a comma is part of a value
    "tabs.txt": (
        "repertoire_id\tfile\tstatus,note\nr1\ta.tsv\tpositive\nr2\tb.tsv\tnegative\n",
        ["repertoire_id", "file", "status,note"],
        "file",
    ),
}


@pytest.mark.parametrize("name", TABLES)
def test_ingest_reads_the_columns_and_files_of_the_one_reader(tmp_path, name):
    text, columns, file_column = TABLES[name]
    for file in ("a.tsv", "b.tsv"):
        write_airr(tmp_path / file, [rec()])
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    table = read_metadata_table(path)
    assert list(table.columns) == columns  # names as written: the BOM dropped, spaces kept
    assert table[file_column].tolist() == ["a.tsv", "b.tsv"]  # values stripped
    id_column = columns[0] if len(columns) > 1 else file_column
    meta = read_metadata(path, id_column=id_column, file_column=file_column, label_column=None,
                         data_dir=tmp_path, options=IngestOptions(), log=quiet)  # fmt: skip
    assert meta["file"].tolist() == table[file_column].tolist()
    assert meta["path"].tolist() == [tmp_path / "a.tsv", tmp_path / "b.tsv"]
    if file_column != "file":  # a padded name is not the name without its spaces
        with pytest.raises(InputError, match="no file column 'file'"):
            read_metadata(path, id_column=id_column, file_column="file", label_column=None,
                          data_dir=tmp_path, options=IngestOptions(), log=quiet)  # fmt: skip


def jobs(dry, rule: str) -> list[dict[str, str]]:
    """The input, output and shell command of each job of a rule in a dry run's output."""
    found = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", dry.stdout):
        if re.match(rf"(?:local)?rule {rule}:\n", block):
            fields = dict(re.findall(r"^\s+(input|output): (.*)$", block, re.M))
            fields["shell"] = re.search(r"^Shell command: (.*)$", block, re.M).group(1)
            found.append(fields)
    return found


def test_the_workflow_plans_the_files_and_columns_that_ingest_reads(tmp_path):
    """A sheet saved with a BOM, a padded label column and padded file names: the workflow
    checks the configuration against the columns ingest sees and makes the files ingest reads
    the inputs of its jobs; the keys of a metadata table left out (id_column, file_column, ...,
    one $defs entry of the schema) get their defaults for a dataset and for a cohort alike."""
    shutil.copytree(EXAMPLE, tmp_path / "data")
    lines = (EXAMPLE / "metadata.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    sheet = "\ufeffrepertoire_id\tfile\t status \n" + "".join(
        f"{rid}\t  {file} \t{label}\n" for rid, file, label in rows
    )
    (tmp_path / "data" / "metadata.tsv").write_text(sheet, encoding="utf-8")
    config = {
        "baselines": [],
        "datasets": {"ex": {"metadata": "data/metadata.tsv", "label_column": " status ",
                            "folds": 3}},
        "apply": {"new": {"model": "ex", "metadata": "data/metadata.tsv"}},
    }  # fmt: skip
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake("results/ex/store", "results/apply/new/store", "--dry-run", "--printshellcmds",
                    "--cores", "1", "--configfile", "mine.yaml", "--replace-workflow-config",
                    cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0, dry.stdout + dry.stderr
    meta = read_metadata(tmp_path / "data" / "metadata.tsv", id_column="repertoire_id",
                         file_column="file", label_column=" status ", data_dir=tmp_path / "data",
                         options=IngestOptions(), log=quiet)  # fmt: skip
    read = [str(path.relative_to(tmp_path)) for path in meta["path"]]
    assert len(read) == 6 and sorted(set(meta["label"])) == ["negative", "positive"]
    (dataset,) = jobs(dry, "ingest_repertoires")
    (cohort,) = jobs(dry, "ingest_cohort")
    for job in (dataset, cohort):
        assert job["input"].split(", ") == ["data/metadata.tsv", *read]
        assert "--id-column repertoire_id --file-column file" in job["shell"]  # the defaults
    assert "--label-column ' status '" in dataset["shell"]
    assert "--label-column" not in cohort["shell"]  # the cohort's default: unlabelled
    # the label column without its padding is not one of the sheet's columns, for both
    config["datasets"]["ex"]["label_column"] = "status"
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    refused = snakemake("--dry-run", "--configfile", "mine.yaml", "--replace-workflow-config",
                        cwd=tmp_path)  # fmt: skip
    assert refused.returncode != 0
    assert (
        "datasets: ex: label_column: 'status' is not a column of data/metadata.tsv (did you "
        "mean ' status '?); its columns: repertoire_id, file,  status "
    ) in refused.stdout + refused.stderr
    with pytest.raises(InputError, match="no label column 'status'"):
        read_metadata(tmp_path / "data" / "metadata.tsv", id_column="repertoire_id",
                      file_column="file", label_column="status", data_dir=tmp_path / "data",
                      options=IngestOptions(), log=quiet)  # fmt: skip
