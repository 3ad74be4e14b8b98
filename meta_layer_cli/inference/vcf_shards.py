"""``score-vcf --shard K/N`` and ``merge-vcf``: contiguous blocks of a VCF scored apart, concatenated back.

Shard ``K`` of ``N`` holds body lines ``[(K-1)*T//N, K*T//N)`` of the input's ``T`` body lines (every
line after ``#CHROM``; records, malformed records and stray comments alike), under the full output
header plus ``##metalayer_shard=<shard=K/N,lines=L,of=T,input=CHECKSUM>`` (the plan, and the checksum of
the input file's bytes). :func:`merge_vcf` checks that the shards are all ``N`` of one split of one
input (none missing or given twice, the same input checksum, same header apart from the command line,
each with the lines its header promises) and writes them in order under the common header, without
the shard line and with its own command line: byte for byte the output of one unsharded run, apart
from the ``##metalayer_command`` line.

Provenance lines, as bcftools writes them: ``##metalayer_version=`` and ``##metalayer_command=``
(:func:`provenance_lines`); those of an earlier run are dropped from the input header.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from meta_layer_cli import __version__
from meta_layer_cli.io.atomic import check_output_file, refuse_overwriting_inputs
from meta_layer_cli.io.vcf import VcfHeader, VcfReader, VcfWriter, is_seekable_file
from meta_layer_cli.runtime.errors import InputDataError, UsageError
from meta_layer_cli.runtime.shards import shard_block

VERSION_TAG = "##metalayer_version="
COMMAND_TAG = "##metalayer_command="
SHARD_TAG = "##metalayer_shard="
_SHARD_LINE = re.compile(r"^##metalayer_shard=<shard=(\d+)/(\d+),lines=(\d+),of=(\d+)(?:,input=([0-9a-f]+))?>$")


def shard_line(k: int, n: int, total: int, input_checksum: str) -> str:
    start, end = shard_block(k, n, total)
    return f"{SHARD_TAG}<shard={k}/{n},lines={end - start},of={total},input={input_checksum}>"


def one_line(text: str) -> str:
    """``text`` fit for one header line (line breaks escaped)."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def provenance_lines(command: str) -> list[str]:
    return [f"{VERSION_TAG}{__version__}", f"{COMMAND_TAG}{one_line(command)}"]


def call_summary(function: str, **arguments) -> str:
    """The ``##metalayer_command`` text of a library call: ``function(name=value, ...)`` (None values left out)."""
    parts = []
    for key, value in arguments.items():
        if value is None:
            continue
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        elif isinstance(value, (list, tuple)):
            value = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
        parts.append(f"{key}={value!r}")
    return f"{function}({', '.join(parts)})"


def _shard_of(path, header: VcfHeader) -> tuple[int, int, int, int, str]:
    found = [m for line in header.meta if (m := _SHARD_LINE.match(line))]
    if len(found) != 1:
        raise InputDataError(
            f"{path}: {'no' if not found else 'more than one'} {SHARD_TAG} line; "
            "merge-vcf takes the outputs of score-vcf --shard K/N"
        )
    *numbers, checksum = found[0].groups()
    if checksum is None:
        raise InputDataError(
            f"{path}: its {SHARD_TAG} line has no input checksum (an older metalayer made it); score the shards again"
        )
    return (*(int(g) for g in numbers), checksum)  # type: ignore[return-value]


def _comparable(header: VcfHeader) -> list[str]:
    return header.without((COMMAND_TAG, SHARD_TAG)).lines()


def merge_vcf(
    shards: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    write_index: bool = False,
    command: str | None = None,
) -> dict:
    """Concatenate the ``N`` outputs of ``score_vcf(..., shard="K/N")`` into ``output``, in shard order.

    Refuses (:class:`InputDataError`) a file that is no shard, shards of different splits or headers, a
    missing or duplicated shard and a shard with fewer or more lines than its header says. ``output``
    is written as :class:`~meta_layer_cli.io.vcf.VcfWriter` writes (atomic for a regular file; ``-``:
    standard output; ``write_index``: a tabix index of bgzip output). Returns ``shards`` and ``lines``.
    """
    if not shards:
        raise UsageError("merge-vcf needs the shard files to merge")
    check_output_file(output, "--output")
    refuse_overwriting_inputs({"--output": [output, *([f"{output}.tbi"] if write_index else [])]}, {"shard": shards})
    for path in shards:
        if not is_seekable_file(path):
            raise InputDataError(f"{path}: not a file (merge-vcf reads each shard twice)")
    if command is None:
        command = call_summary("merge_vcf", shards=list(shards), output=output, write_index=write_index)
    by_index: dict[int, tuple[os.PathLike | str, VcfHeader]] = {}
    split = None
    first = None
    for path in shards:
        with VcfReader(path) as reader:
            header = reader.header
        k, n, lines, total, checksum = _shard_of(path, header)
        if split is None:
            split, first = (n, total, checksum), (path, _comparable(header))
        elif (n, total) != split[:2]:
            raise InputDataError(
                f"{path} is shard {k}/{n} of {total} lines, {first[0]} one of {split[0]} "
                f"shards of {split[1]} lines: not the same split"
            )
        elif checksum != split[2]:
            raise InputDataError(
                f"{path} was scored from another input VCF than {first[0]} (input checksum "
                f"{checksum}, not {split[2]}): shards must come from one input"
            )
        if k in by_index:
            raise InputDataError(f"shard {k}/{n} given twice: {by_index[k][0]} and {path}")
        if lines != (lambda b: b[1] - b[0])(shard_block(k, n, total)):
            raise InputDataError(f"{path}: shard {k}/{n} of {total} lines cannot hold {lines} lines")
        ours = _comparable(header)
        if ours != first[1]:
            diff = next((a for a, b in zip(ours, first[1]) if a != b), None) or f"{len(ours)} header lines"
            raise InputDataError(
                f"{path}: header differs from {first[0]}'s (at {diff[:120]!r}); "
                "shards must come from one score-vcf setup"
            )
        by_index[k] = (path, header)
    n, total, _ = split
    missing = [k for k in range(1, n + 1) if k not in by_index]
    if missing:
        raise InputDataError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {n} missing")
    header = by_index[1][1].without((SHARD_TAG,))
    new_command = f"{COMMAND_TAG}{one_line(command)}"
    if any(m.startswith(COMMAND_TAG) for m in header.meta):
        header.meta = [new_command if m.startswith(COMMAND_TAG) else m for m in header.meta]
    else:
        header.meta.append(new_command)
    written = 0
    with VcfWriter(output, header, index=write_index) as writer:
        for k in range(1, n + 1):
            path = by_index[k][0]
            start, end = shard_block(k, n, total)
            count = 0
            with VcfReader(path) as reader:
                for record in reader:
                    writer.write(record)
                    count += 1
            if count != end - start:
                raise InputDataError(
                    f"{path}: shard {k}/{n} has {count} lines, its header says {end - start} (truncated or edited?)"
                )
            written += count
    return {"shards": n, "lines": written}
