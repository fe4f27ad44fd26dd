"""Simulated cohorts with known signals: AIRR files, metadata, and the ground truth beside them.

Background sequences come from OLGA's shipped generative V(D)J models, or from a file of real
rearrangements (``background``: each repertoire samples the file's distinct ones). OLGA draws ~9,000
sequences a second in one process, so a cohort is not drawn sequence by sequence: a pool of
productive rearrangements is drawn once, in parallel processes, and each repertoire samples its
clonotypes from the pool. Because repertoires share one pool, clonotypes recur between
individuals; the expected pairwise overlap is about ``n_sequences / pool_size``.

Signals are implanted into some repertoires and recorded in ``truth.tsv`` (never in the AIRR
files): k-mer motifs (with wildcards, substitution noise and deletions) at a witness rate,
disease-associated public clonotypes present with some probability (the Emerson CMV situation),
and real antigen-specific clonotypes (e.g. data/antigen_specific/) at a witness rate.
Every random choice derives from one seed, so the same configuration and seed give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
from isal import igzip

from deeprc import __version__, outputs
from deeprc.atomic import atomic_directory
from deeprc.errors import InputError
from deeprc.parallel import parallel_map
from deeprc.progress import Progress
from deeprc.store import AMINO_ACIDS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LABEL_COLUMN", "EpitopeSignal", "MotifSignal", "PublicSignal", "RepertoireNumber",
    "SimulationConfig", "simulate",
]  # fmt: skip

# the column of metadata.tsv that holds a simulated repertoire's (observed) label
LABEL_COLUMN = "status"
# with several conditions, the column that names each repertoire's, and the negatives' name
CONDITION_COLUMN, HEALTHY = "condition", "healthy"

OlgaModel = Literal["human_T_beta", "human_T_alpha", "human_B_heavy"]
_LOCUS = {"human_T_beta": "TRB", "human_T_alpha": "TRA", "human_B_heavy": "IGH"}
_CODONS: dict[str, list[str]] = {}
for _codon, _aa in zip(
    (a + b + c for a in "TCAG" for b in "TCAG" for c in "TCAG"),
    "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
    strict=True,
):
    _CODONS.setdefault(_aa, []).append(_codon)
_AIRR_COLUMNS = (
    "sequence_id", "sequence", "rev_comp", "productive", "v_call", "d_call", "j_call",
    "sequence_alignment", "germline_alignment", "junction", "junction_aa",
    "v_cigar", "d_cigar", "j_cigar", "duplicate_count", "locus",
)  # fmt: skip
_MARGIN = 2  # residues at each end of a junction that a motif never touches (C ... F/W anchors)


@dataclass(frozen=True)
class MotifSignal:
    """A k-mer implanted into a fraction (the witness rate) of a repertoire's sequences.

    ``motif`` uses one-letter amino-acid codes; ``.`` is a wildcard that keeps the residue the
    sequence had. Each non-wildcard position is replaced by a random amino acid with probability
    ``substitution_rate``; with probability ``deletion_rate`` one of them is left out (the
    junction gets one residue shorter). ``position`` is the 0-based start in the junction, or
    None for a random interior position. ``repertoire_fraction`` of the positive repertoires and
    ``negative_fraction`` of the negative ones carry the signal.
    """

    name: str
    motif: str
    witness_rate: float
    position: int | None = None
    substitution_rate: float = 0.0
    deletion_rate: float = 0.0
    v_genes: tuple[str, ...] = ()
    repertoire_fraction: float = 1.0
    negative_fraction: float = 0.0
    condition: str | None = None
    scaled_by: str | None = None


@dataclass(frozen=True)
class PublicSignal:
    """Disease-associated clonotypes (junction with V and J), each present in a positive
    repertoire with probability ``presence`` and in a negative one with ``negative_presence``."""

    name: str
    n_clonotypes: int = 20
    presence: float = 0.2
    negative_presence: float = 0.0
    condition: str | None = None


@dataclass(frozen=True)
class EpitopeSignal:
    """Real clonotypes of one antigen (junction_aa, V and J), ``witness_rate`` of a carrying
    repertoire's sequences, each drawn without replacement from the set: many distinct, mostly
    private sequences of one specificity, as a real response has, rather than one motif.

    ``file`` is a TSV with columns junction_aa, v_call, j_call and epitope_set (e.g.
    data/antigen_specific/mira_trb.tsv.gz; a relative path is read from the config file's
    directory, like ``background``); ``epitope_set`` picks its rows. Genes are written as the
    background writes them, and clonotypes of a gene it never uses are left out (counted in
    simulation.json). ``repertoire_fraction`` of the positive repertoires and
    ``negative_fraction`` of the negative ones carry the signal.
    """

    name: str
    file: str
    epitope_set: str
    witness_rate: float
    repertoire_fraction: float = 1.0
    negative_fraction: float = 0.0
    condition: str | None = None


@dataclass(frozen=True)
class RepertoireNumber:
    """A number drawn for each repertoire, uniform in [``low``, ``high``], and written to the
    metadata as a column of its ``name``: a numeric target or a covariate (age, severity).

    A motif that names it in ``scaled_by`` has its witness rate scaled by where the
    repertoire's number lies in the range: 0 at ``low``, 2 at ``high`` (so the cohort's mean
    rate is the motif's ``witness_rate``). With ``positive_from`` > 0, positives draw from
    that fraction of the range upwards: the number is then confounded with the label.
    """

    name: str
    low: float = 0.0
    high: float = 1.0
    positive_from: float = 0.0


@dataclass(frozen=True)
class SimulationConfig:
    """A cohort: size, background, clone-size distribution, labels and signals.

    The background is OLGA's ``model`` or, with ``background``, the productive rearrangements
    of an AIRR file (real repertoires, resampled; a relative path is read from the config
    file's directory); ``model`` still names the locus and draws public clonotypes."""

    n_repertoires: int = 20
    n_sequences: int = 2000
    positive_fraction: float = 0.5
    model: OlgaModel = "human_T_beta"
    background: str | None = None
    pool_size: int | None = None
    count_exponent: float = 2.0
    max_count: int = 100_000
    label_noise: float = 0.0
    # positives hold this many times n_sequences: a sequencing-depth confound (1: none), for
    # checking that an evaluation notices when depth alone separates the classes
    positive_depth: float = 1.0
    seed: int = 0
    motifs: tuple[MotifSignal, ...] = ()
    public_clonotypes: tuple[PublicSignal, ...] = ()
    epitope_sequences: tuple[EpitopeSignal, ...] = ()
    # several conditions: positives are split evenly among them, and the metadata's column
    # `condition` holds each repertoire's (the negatives': healthy); a signal that names one is
    # carried by positives of that condition only
    conditions: tuple[str, ...] = ()
    numbers: tuple[RepertoireNumber, ...] = ()

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise InputError(f"simulation config: {message}")

        check(self.n_repertoires >= 2, "n_repertoires must be at least 2")
        check(self.n_sequences >= 1, "n_sequences must be at least 1")
        n_pos = round(self.positive_fraction * self.n_repertoires)
        check(0 < n_pos < self.n_repertoires, "positive_fraction must leave both classes non-empty")
        check(self.positive_depth > 0, "positive_depth must be > 0")
        pool_ok = self.pool_size is None or self.pool_size >= self.largest_repertoire
        check(pool_ok, "pool_size must be at least n_sequences (x positive_depth, if larger)")
        check(
            self.background is None or self.pool_size is None,
            "pool_size draws an OLGA pool; with background the pool is the file's sequences",
        )
        check(self.count_exponent > 1, "count_exponent must be > 1 (a Zipf exponent)")
        check(0 <= self.label_noise < 0.5, "label_noise must be in [0, 0.5)")
        names = [s.name for s in self.signals]
        check(len(names) == len(set(names)), f"signal names must be unique, got {names}")
        for m in self.motifs:
            where = f"motif {m.name!r}"
            letters_ok = bool(m.motif) and set(m.motif) <= set(AMINO_ACIDS + ".")
            check(letters_ok, f"{where}: motif must use the 20 amino-acid letters and '.'")
            check(m.motif.strip(".") == m.motif, f"{where}: motif must not start or end with '.'")
            rates = ("witness_rate", "substitution_rate", "deletion_rate")
            for key in (*rates, "repertoire_fraction", "negative_fraction"):
                check(0 <= getattr(m, key) <= 1, f"{where}: {key} must be in [0, 1]")
            position_ok = m.position is None or m.position >= _MARGIN
            check(position_ok, f"{where}: position must be >= {_MARGIN} (anchors stay)")
        for p in self.public_clonotypes:
            check(p.n_clonotypes >= 1, f"public signal {p.name!r}: n_clonotypes must be >= 1")
            presence_ok = 0 <= p.presence <= 1 and 0 <= p.negative_presence <= 1
            check(presence_ok, f"public signal {p.name!r}: presences must be in [0, 1]")
        for e in self.epitope_sequences:
            where = f"epitope signal {e.name!r}"
            check(0 < e.witness_rate <= 1, f"{where}: witness_rate must be in (0, 1]")
            for key in ("repertoire_fraction", "negative_fraction"):
                check(0 <= getattr(e, key) <= 1, f"{where}: {key} must be in [0, 1]")
        conditions_ok = len(set(self.conditions)) == len(self.conditions) != 1
        check(conditions_ok, "conditions must be 2 or more distinct names (or none)")
        check(HEALTHY not in self.conditions, f"{HEALTHY!r} names the negatives' condition")
        check(n_pos >= len(self.conditions), "conditions: fewer positives than conditions")
        for signal in self.signals:
            known = signal.condition is None or signal.condition in self.conditions
            check(known, f"signal {signal.name!r}: condition {signal.condition!r} is not one "
                  f"of conditions {list(self.conditions)}")  # fmt: skip
        columns = [x.name for x in self.numbers]
        taken = {"repertoire_id", "file", LABEL_COLUMN, CONDITION_COLUMN}
        check(len(set(columns)) == len(columns) and not taken & set(columns),
              f"numbers: names must be unique and none of {sorted(taken)}")  # fmt: skip
        for x in self.numbers:
            check(x.low < x.high, f"number {x.name!r}: low must be below high")
            check(0 <= x.positive_from < 1, f"number {x.name!r}: positive_from must be in [0, 1)")
        for m in self.motifs:
            known = m.scaled_by is None or m.scaled_by in columns
            check(known, f"motif {m.name!r}: scaled_by {m.scaled_by!r} is not one of numbers "
                  f"{columns}")  # fmt: skip

    @property
    def signals(self) -> tuple[MotifSignal | PublicSignal | EpitopeSignal, ...]:
        return (*self.motifs, *self.public_clonotypes, *self.epitope_sequences)

    def sequences_of(self, label: int) -> int:
        """Clonotypes of a repertoire with this label."""
        return max(1, round(self.n_sequences * (self.positive_depth if label == 1 else 1)))

    @property
    def largest_repertoire(self) -> int:
        return max(self.sequences_of(0), self.sequences_of(1))

    @property
    def resolved_pool_size(self) -> int:
        return self.pool_size or min(max(10 * self.largest_repertoire, 20_000), 500_000)


# ----------------------------------------------------------------------------- OLGA pool


def _olga_generator(model: OlgaModel):
    import olga
    import olga.load_model as load_model
    import olga.sequence_generation as sequence_generation

    folder = Path(olga.__file__).parent / "default_models" / model
    vdj = model != "human_T_alpha"
    genomic = load_model.GenomicDataVDJ() if vdj else load_model.GenomicDataVJ()
    genomic.load_igor_genomic_data(
        str(folder / "model_params.txt"),
        str(folder / "V_gene_CDR3_anchors.csv"),
        str(folder / "J_gene_CDR3_anchors.csv"),
    )
    generative = load_model.GenerativeModelVDJ() if vdj else load_model.GenerativeModelVJ()
    generative.load_and_process_igor_model(str(folder / "model_marginals.txt"))
    cls = (
        sequence_generation.SequenceGenerationVDJ
        if vdj
        else sequence_generation.SequenceGenerationVJ
    )
    return cls(generative, genomic), genomic


def _draw_olga(task: tuple[OlgaModel, int, int]) -> list[tuple[str, str, str, str]]:
    """``n`` productive rearrangements (junction nt, junction aa, V, J) from one seed.

    OLGA draws from numpy's global generator, so each chunk seeds it: chunks are reproducible
    whichever process runs them.
    """
    model, n, seed = task
    generator, genomic = _olga_generator(model)
    np.random.seed(seed)  # noqa: NPY002 (OLGA samples from numpy's global generator)
    out = []
    for _ in range(n):
        nt, aa, v, j = generator.gen_rnd_prod_CDR3()
        out.append((nt, aa, genomic.genV[v][0], genomic.genJ[j][0]))
    return out


def _draw(model: OlgaModel, n: int, seed: np.random.SeedSequence, threads: int) -> np.ndarray:
    """(n, 4) object array of OLGA draws, in chunks spread over processes."""
    chunk = 5_000
    sizes = [min(chunk, n - start) for start in range(0, n, chunk)]
    seeds = [int(s.generate_state(1)[0]) for s in seed.spawn(len(sizes))]
    tasks = [(model, size, s) for size, s in zip(sizes, seeds, strict=True)]
    with Progress("simulate: OLGA draws", n, "sequences") as progress:
        parts = parallel_map(_draw_olga, tasks, threads, progress=progress, sizes=sizes)
    rows = [row for part in parts for row in part]
    return np.array(rows, dtype=object).reshape(-1, 4)


def _read_tsv(path: Path, columns: list[str], problem: str) -> pd.DataFrame:
    """``columns`` of a TSV (gzip allowed) as strings, missing values empty; ``problem``
    begins the error when it cannot be read."""
    try:
        table = pcsv.read_csv(
            path,
            parse_options=pcsv.ParseOptions(delimiter="\t"),
            convert_options=pcsv.ConvertOptions(
                include_columns=columns, column_types=dict.fromkeys(columns, pa.string())
            ),
        )
    except (FileNotFoundError, pa.ArrowInvalid, KeyError) as exc:
        raise InputError(f"{problem} with columns {', '.join(columns)}: {exc}") from None
    return table.to_pandas().fillna("")


def _read_background(path: Path, locus: str, n_sequences: int) -> tuple[np.ndarray, dict]:
    """(n, 4) object array of the file's distinct usable rearrangements (junction nt, junction
    aa, V, J), and how many rows were kept or dropped, by reason."""
    columns = ["productive", "v_call", "j_call", "junction", "junction_aa"]
    rows = _read_tsv(
        path, columns, f"simulation config: background {path} is not a readable AIRR "
        "rearrangement TSV"
    )  # fmt: skip
    aa, nt = rows["junction_aa"], rows["junction"]
    reasons = {
        "not productive": ~rows["productive"].str.upper().isin(["T", "TRUE"]),
        f"v_call not of locus {locus}": ~rows["v_call"].str.startswith(locus),
        "junction_aa not of the 20 amino acids": ~aa.str.fullmatch(f"[{AMINO_ACIDS}]+"),
        "junction not 3 x junction_aa long": nt.str.len() != 3 * aa.str.len(),
    }
    dropped, keep = {}, np.ones(len(rows), bool)
    for reason, failed in reasons.items():
        dropped[reason] = int((keep & failed.to_numpy()).sum())
        keep &= ~failed.to_numpy()
    kept = rows.loc[keep, ["junction", "junction_aa", "v_call", "j_call"]]
    distinct = kept.drop_duplicates()
    dropped["duplicate rearrangement"] = len(kept) - len(distinct)
    if len(distinct) < n_sequences:
        raise InputError(
            f"simulation config: background {path} holds {len(distinct):,} usable distinct "
            f"rearrangements (dropped: {dropped}); a repertoire needs n_sequences = {n_sequences:,}"
        )
    report = {"file": str(path), "rows": len(rows), "kept": len(distinct), "dropped": dropped}
    return distinct.to_numpy(dtype=object), report


def _read_epitope_set(
    signal: EpitopeSignal, background: np.ndarray, needed: int
) -> tuple[np.ndarray, dict]:
    """(n, 3) object array of the set's distinct usable clonotypes (junction aa, V, J), with
    genes written as the background writes them, and how many rows were kept or dropped, by
    reason. A clonotype of a gene the background never uses is left out: its gene name alone
    would mark it as implanted."""
    path, where = Path(signal.file), f"simulation config: epitope signal {signal.name!r}"
    columns = ["junction_aa", "v_call", "j_call", "epitope_set"]
    everything = _read_tsv(path, columns, f"{where}: {path} is not a readable TSV")
    rows = everything[everything["epitope_set"] == signal.epitope_set]
    if rows.empty:
        raise InputError(
            f"{where}: {path} has no epitope_set {signal.epitope_set!r}; it has "
            f"{sorted(everything['epitope_set'].unique())}"
        )
    v_form, j_form = _gene_forms(background[:, 2]), _gene_forms(background[:, 3])
    aa, v_gene, j_gene = rows["junction_aa"], rows["v_call"].map(_gene), rows["j_call"].map(_gene)
    reasons = {
        "junction_aa not of the 20 amino acids": ~aa.str.fullmatch(f"[{AMINO_ACIDS}]+"),
        "V or J gene not in the background": ~(v_gene.isin(v_form) & j_gene.isin(j_form)),
    }
    dropped, keep = {}, np.ones(len(rows), bool)
    for reason, failed in reasons.items():
        dropped[reason] = int((keep & failed.to_numpy()).sum())
        keep &= ~failed.to_numpy()
    kept = np.column_stack([aa[keep], v_gene[keep].map(v_form), j_gene[keep].map(j_form)])
    distinct = np.unique(kept.astype(str), axis=0).astype(object)
    dropped["duplicate clonotype"] = len(kept) - len(distinct)
    if len(distinct) < needed:
        raise InputError(
            f"{where}: epitope_set {signal.epitope_set!r} of {path} holds {len(distinct):,} "
            f"usable distinct clonotypes (dropped: {dropped}); a repertoire of the cohort needs "
            f"{needed:,} (witness_rate {signal.witness_rate})"
        )
    report = {
        "file": str(path),
        "epitope_set": signal.epitope_set,
        "rows": len(rows),
        "kept": len(distinct),
        "dropped": dropped,
    }
    return distinct, report


def _gene_forms(calls: np.ndarray) -> dict[str, str]:
    """Gene -> how these calls write it (``TRBV20-1`` -> ``TRBV20-1*01`` in an OLGA pool)."""
    forms: dict[str, str] = {}
    for call in sorted(set(calls)):
        forms.setdefault(_gene(call), call)
    return forms


# ----------------------------------------------------------------------------- one repertoire


@dataclass(frozen=True)
class _Plan:
    """What one repertoire gets: identity, labels, which signals, and its own seed."""

    index: int
    repertoire_id: str
    status: int
    label: int
    motifs: tuple[MotifSignal, ...]
    public: tuple[tuple[str, float], ...]  # (signal name, presence probability)
    epitopes: tuple[EpitopeSignal, ...]
    seed: np.random.SeedSequence
    condition: str = HEALTHY
    numbers: tuple[float, ...] = ()  # SimulationConfig.numbers, drawn for this repertoire
    rates: tuple[float, ...] = ()  # each of ``motifs``' witness rate here (scaled_by)


def _gene(call: str) -> str:
    return call.split("*")[0]


def _reverse_translate(aa: str, rng: np.random.Generator) -> str:
    """A junction that translates to ``aa``, each codon drawn at random."""
    return "".join(_CODONS[a][rng.integers(len(_CODONS[a]))] for a in aa)


def _implant(
    aa: str, nt: str, signal: MotifSignal, rng: np.random.Generator
) -> tuple[str, str] | None:
    """The junction (aa, nt) carrying the motif, or None when the junction is too short."""
    motif = list(signal.motif)
    fixed = [i for i, c in enumerate(motif) if c != "."]
    for i in fixed:
        if rng.random() < signal.substitution_rate:
            motif[i] = AMINO_ACIDS[rng.integers(20)]
    deleted = int(rng.choice(fixed)) if rng.random() < signal.deletion_rate else None
    last_start = len(aa) - _MARGIN - len(motif)
    if signal.position is not None:
        start = signal.position
        if start > last_start:
            return None
    elif last_start < _MARGIN:
        return None
    else:
        start = int(rng.integers(_MARGIN, last_start + 1))
    residues, codons = list(aa), [nt[3 * k : 3 * k + 3] for k in range(len(aa))]
    for offset, letter in enumerate(motif):
        if letter != ".":
            options = _CODONS[letter]
            residues[start + offset] = letter
            codons[start + offset] = options[rng.integers(len(options))]
    if deleted is not None:
        del residues[start + deleted], codons[start + deleted]
    return "".join(residues), "".join(codons)


def _repertoire(
    plan: _Plan,
    pool: np.ndarray,
    public: dict[str, np.ndarray],
    epitopes: dict[str, np.ndarray],
    cfg: SimulationConfig,
):
    """Rows of one repertoire (columns of the AIRR table) and its ground-truth rows."""
    rng = np.random.default_rng(plan.seed)
    n = cfg.sequences_of(plan.label)
    rows = pool[rng.choice(len(pool), n, replace=False)].copy()
    counts = np.minimum(rng.zipf(cfg.count_exponent, n), cfg.max_count)
    signal_of = np.full(n, "", dtype=object)
    for name, presence in plan.public:
        clonotypes = public[name]
        present = np.flatnonzero(rng.random(len(clonotypes)) < presence)
        free = np.flatnonzero(signal_of == "")
        slots = rng.choice(free, len(present), replace=False)
        rows[slots] = clonotypes[present]
        signal_of[slots] = name
    for signal in plan.epitopes:
        clonotypes, free = epitopes[signal.name], np.flatnonzero(signal_of == "")
        k = max(1, round(signal.witness_rate * n))
        if k > len(free):
            raise InputError(
                f"epitope signal {signal.name!r}: {plan.repertoire_id} has {len(free)} sequences "
                f"free of other signals, it needs {k}; lower witness_rate"
            )
        slots = rng.choice(free, k, replace=False)
        for slot, (aa, v, j) in zip(
            slots, clonotypes[rng.choice(len(clonotypes), k, replace=False)], strict=True
        ):
            rows[slot] = (_reverse_translate(aa, rng), aa, v, j)
        signal_of[slots] = signal.name
    for signal, rate in zip(plan.motifs, plan.rates, strict=True):
        k = max(1, round(rate * n)) if rate > 0 else 0
        candidates = signal_of == ""
        if signal.v_genes:
            genes = np.array([_gene(v) for v in rows[:, 2]])
            candidates &= np.isin(genes, [_gene(g) for g in signal.v_genes])
        placed = 0
        for slot in rng.permutation(np.flatnonzero(candidates)):
            if placed == k:
                break
            carried = _implant(rows[slot, 1], rows[slot, 0], signal, rng)
            if carried is not None:
                rows[slot, 1], rows[slot, 0] = carried
                signal_of[slot] = signal.name
                placed += 1
        if placed < k:
            raise InputError(
                f"motif {signal.name!r}: only {placed} of the {k} sequences it needs in "
                f"{plan.repertoire_id} can carry it (V genes {list(signal.v_genes)}, length); "
                "lower witness_rate or widen v_genes"
            )
    ids = np.array([f"{plan.repertoire_id}_{i:07d}" for i in range(n)], dtype=object)
    truth = [(plan.repertoire_id, ids[i], signal_of[i]) for i in np.flatnonzero(signal_of != "")]
    return rows, counts, ids, truth


def _write_repertoire(task: tuple[_Plan, Path]) -> list[tuple[str, str, str]]:
    """Write one AIRR file (deterministic gzip: no name or time in its header)."""
    plan, path = task
    rows, counts, ids, truth = _repertoire(
        plan, _WORKER["pool"], _WORKER["public"], _WORKER["epitopes"], _WORKER["cfg"]
    )
    n = len(rows)
    empty = pa.array([""] * n)
    columns = {
        "sequence_id": pa.array(ids, pa.string()),
        "sequence": pa.array(rows[:, 0], pa.string()),
        "rev_comp": pa.array(["F"] * n),
        "productive": pa.array(["T"] * n),
        "v_call": pa.array(rows[:, 2], pa.string()),
        "d_call": empty,
        "j_call": pa.array(rows[:, 3], pa.string()),
        "sequence_alignment": empty,
        "germline_alignment": empty,
        "junction": pa.array(rows[:, 0], pa.string()),
        "junction_aa": pa.array(rows[:, 1], pa.string()),
        "v_cigar": empty,
        "d_cigar": empty,
        "j_cigar": empty,
        "duplicate_count": pa.array(counts, pa.int64()),
        "locus": pa.array([_LOCUS[_WORKER["cfg"].model]] * n),
    }
    table = pa.table([columns[c] for c in _AIRR_COLUMNS], names=list(_AIRR_COLUMNS))
    sink = pa.BufferOutputStream()
    sink.write(("\t".join(_AIRR_COLUMNS) + "\n").encode())  # Arrow would quote the names
    options = pcsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    pcsv.write_csv(table, sink, options)
    path.write_bytes(igzip.compress(sink.getvalue().to_pybytes(), compresslevel=1, mtime=0))
    return truth


_WORKER: dict = {}


# ----------------------------------------------------------------------------- the cohort


def _plans(cfg: SimulationConfig, seeds: list[np.random.SeedSequence]) -> list[_Plan]:
    rng = np.random.default_rng(seeds[0])
    n = cfg.n_repertoires
    n_pos = round(cfg.positive_fraction * n)
    status = rng.permutation(np.r_[np.ones(n_pos, int), np.zeros(n - n_pos, int)])
    label = status.copy()
    flipped = rng.choice(n, round(cfg.label_noise * n), replace=False)
    label[flipped] = 1 - label[flipped]
    positives, negatives = np.flatnonzero(status == 1), np.flatnonzero(status == 0)
    condition = np.full(n, HEALTHY, dtype=object)
    if cfg.conditions:  # no draw without them: a cohort of one condition keeps its bytes
        shuffled = rng.permutation(positives)
        condition[shuffled] = [cfg.conditions[i % len(cfg.conditions)] for i in range(n_pos)]

    def carriers(fraction: float, among: np.ndarray) -> set[int]:
        return set(rng.choice(among, round(fraction * len(among)), replace=False).tolist())

    def carriers_of(signal: MotifSignal | EpitopeSignal) -> set[int]:
        """Its carriers among the positives (of its condition, if it names one), then among
        the negatives."""
        ill = positives
        if signal.condition is not None:
            ill = np.flatnonzero(condition == signal.condition)
        ill_ones = carriers(signal.repertoire_fraction, ill)
        return ill_ones | carriers(signal.negative_fraction, negatives)

    motif_carriers = [carriers_of(m) for m in cfg.motifs]
    epitope_carriers = [carriers_of(e) for e in cfg.epitope_sequences]
    # each number's place in its range (0 low, 1 high); positives from positive_from upwards
    place = np.array([rng.uniform(np.where(status == 1, x.positive_from, 0.0), 1.0)
                      for x in cfg.numbers]).reshape(len(cfg.numbers), n)  # fmt: skip
    scale = {x.name: 2 * place[i] for i, x in enumerate(cfg.numbers)}
    width = len(str(n - 1))
    plans = []
    for r in range(n):
        motifs = tuple(m for m, c in zip(cfg.motifs, motif_carriers, strict=True) if r in c)
        public = tuple(
            (p.name, p.presence if status[r] and p.condition in (None, condition[r])
             else p.negative_presence)
            for p in cfg.public_clonotypes
        )  # fmt: skip
        plans.append(_Plan(
            index=r,
            repertoire_id=f"rep{r:0{width}d}",
            status=int(status[r]),
            label=int(label[r]),
            motifs=motifs,
            public=public,
            epitopes=tuple(
                e for e, c in zip(cfg.epitope_sequences, epitope_carriers, strict=True) if r in c
            ),
            seed=seeds[1 + r],
            condition=str(condition[r]),
            numbers=tuple(float(x.low + place[i, r] * (x.high - x.low))
                          for i, x in enumerate(cfg.numbers)),
            rates=tuple(m.witness_rate * (scale[m.scaled_by][r] if m.scaled_by else 1.0)
                        for m in motifs),
        ))  # fmt: skip
    return plans


def simulate(
    cfg: SimulationConfig,
    out: Path,
    *,
    threads: int = 2,
    overwrite: bool = False,
    inputs: Iterable[Path] = (),
) -> dict:
    """Write a simulated cohort to ``out``; returns the summary also saved as simulation.json.

    ``out`` gets one ``<repertoire>.tsv.gz`` per repertoire, ``metadata.tsv`` (repertoire_id,
    file, the observed label in :data:`LABEL_COLUMN`, status, and with them the condition and
    the numbers), ``truth.tsv``
    (repertoire_id, sequence_id, signal) and ``truth_repertoires.tsv`` (true status, observed
    label, signals carried).
    """
    out = Path(out)
    with atomic_directory(out, overwrite=overwrite, inputs=inputs, command="simulate") as tmp:
        root = np.random.SeedSequence(cfg.seed)
        pool_seed, public_seed, plan_seed = root.spawn(3)
        if cfg.background is None:
            pool, background = _draw(cfg.model, cfg.resolved_pool_size, pool_seed, threads), None
        else:
            locus = _LOCUS[cfg.model]
            pool, background = _read_background(Path(cfg.background), locus, cfg.largest_repertoire)
        public_seeds = public_seed.spawn(len(cfg.public_clonotypes))
        public = {
            p.name: _draw(cfg.model, p.n_clonotypes, s, 1)
            for p, s in zip(cfg.public_clonotypes, public_seeds, strict=True)
        }
        epitope_sets = {
            e.name: _read_epitope_set(
                e, pool, max(1, round(e.witness_rate * cfg.largest_repertoire))
            )
            for e in cfg.epitope_sequences
        }
        epitopes = {name: clonotypes for name, (clonotypes, _) in epitope_sets.items()}
        plans = _plans(cfg, plan_seed.spawn(1 + cfg.n_repertoires))
        tasks = [(plan, tmp / f"{plan.repertoire_id}.tsv.gz") for plan in plans]
        _WORKER.update(pool=pool, public=public, epitopes=epitopes, cfg=cfg)  # forked workers
        with Progress("simulate: repertoires", len(tasks), "repertoires") as progress:
            truths = parallel_map(_write_repertoire, tasks, threads, chunksize=4, progress=progress)
        _write_tables(tmp, plans, truths, cfg)
        summary = {
            "deeprc_version": __version__,
            "olga_version": version("olga"),
            "config": asdict(cfg),
            "pool_size": len(pool),
            "background": background,
            "n_implanted": {
                name: sum(1 for t in truths for row in t if row[2] == name)
                for name in [s.name for s in cfg.signals]
            },
            "public_clonotypes": {
                name: [{"junction_aa": r[1], "v_call": r[2], "j_call": r[3]} for r in clonotypes]
                for name, clonotypes in public.items()
            },
            "epitope_sequences": {name: report for name, (_, report) in epitope_sets.items()},
        }
        (tmp / outputs.SIMULATION).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _write_tables(tmp: Path, plans: list[_Plan], truths: list[list], cfg: SimulationConfig) -> None:
    names = {0: "negative", 1: "positive"}
    extra = [CONDITION_COLUMN] * bool(cfg.conditions) + [x.name for x in cfg.numbers]
    meta = ["\t".join(["repertoire_id", "file", LABEL_COLUMN, *extra])]
    for p in plans:
        values = [p.condition] * bool(cfg.conditions) + [f"{v:.6g}" for v in p.numbers]
        meta.append("\t".join([p.repertoire_id, f"{p.repertoire_id}.tsv.gz", names[p.label],
                               *values]))  # fmt: skip
    (tmp / "metadata.tsv").write_text("\n".join(meta) + "\n")
    truth = ["repertoire_id\tsequence_id\tsignal"]
    truth += ["\t".join(row) for rows in truths for row in rows]
    (tmp / outputs.TRUTH).write_text("\n".join(truth) + "\n")
    reps = ["repertoire_id\ttrue_status\tobserved_status\tlabel_flipped\tmotifs\tn_public"]
    for p, rows in zip(plans, truths, strict=True):
        n_public = sum(1 for row in rows if row[2] in {name for name, _ in p.public})
        reps.append(
            f"{p.repertoire_id}\t{names[p.status]}\t{names[p.label]}\t{p.status != p.label}"
            f"\t{','.join(s.name for s in (*p.motifs, *p.epitopes))}\t{n_public}"
        )
    (tmp / outputs.TRUTH_REPERTOIRES).write_text("\n".join(reps) + "\n")
