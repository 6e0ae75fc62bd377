"""``rewrap_objects``: rotate token files in a local directory or an S3 prefix.

Guarantees:

* **Rewrap touches only the header.** A token's header (at most 256 bytes) is
  re-wrapped; the payload bytes are never decrypted or re-sent. On S3 an object
  larger than one part (8 MiB) is rewritten with a multipart upload whose first
  part (new header + the rest of the first 8 MiB) is uploaded and whose other
  parts are ``UploadPartCopy`` server-side copies of the unchanged bytes, so
  only the first part crosses the network. Smaller objects are read and put
  whole.
* **Compare-and-set.** Every read and copy is pinned to the ETag seen first
  (``IfMatch`` / ``CopySourceIfMatch``): an object replaced meanwhile makes the
  rewrite fail as a conflict and the new object is left alone. Local files are
  rewritten into a temporary file beside them, fsynced, and renamed over the
  original only if its header and size are still the ones read.
* **Nothing half-written is visible.** A multipart upload that fails is
  aborted; the object stays the old, decryptable token until the completing
  call. A temporary local file that fails is removed.
* **Re-encrypt** streams each object through ``decrypt_stream`` and
  ``encrypt_stream`` into a spooled temporary file (memory bounded by 8 MiB).

A rerun skips objects already on the primary key versions, so it is
idempotent; objects need no checkpoint table.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from styku_crypto._extras import require
from styku_crypto.batch._cluster import client_for, run_all, worker_address
from styku_crypto.batch._report import BatchFailure, BatchReport, PartitionResult
from styku_crypto.batch._work import TokenError, check_mode, failure_reason, open_for_run
from styku_crypto.envelope._envelope import Envelope
from styku_crypto.envelope._format import SUITE_STREAM, parse_header
from styku_crypto.envelope._spec import EnvelopeSpec
from styku_crypto.exceptions import InvalidInputError, RootKeyUnavailableError

__all__ = ["PART_SIZE", "rewrap_objects"]

#: Multipart part size: S3's minimum part is 5 MiB; the first part is the only
#: one uploaded by a header rewrite.
PART_SIZE = 8 * 1024 * 1024
#: Bytes read to parse any header (the longest, suite 3 sensitive, is 230).
HEAD_BYTES = 512
_MAX_COPY = 5 * 1024 * 1024 * 1024
_TMP_PREFIX = ".styku-batch-"

Context = Mapping[str, str] | Callable[[str], Mapping[str, str]]


class _ConflictError(Exception):
    """The object changed between our read and our write."""


def _context_for(context: Context | None, key: str) -> Mapping[str, str]:
    if context is None:
        return {}
    return context(key) if callable(context) else context


class _Counts:
    def __init__(self) -> None:
        self.read = self.written = self.copied = 0


def _new_header(env: Envelope, head: bytes, tenant: str) -> tuple[bytes, int] | None:
    header = parse_header(head)
    if not env.needs_rewrap(head[: header.length], tenant=tenant):
        return None
    old = head[: header.length]
    new = env.rewrap(old, tenant=tenant)
    return new, header.length


def _reencrypt(
    env: Envelope, src: BinaryIO, dst: BinaryIO, head: bytes, tenant: str, ctx: Mapping[str, str]
) -> None:
    header = parse_header(head)
    if header.suite == SUITE_STREAM:
        reader = env.decrypt_stream(src, tenant=tenant, context=ctx, data_class=header.data_class)
        with env.encrypt_stream(dst, tenant=tenant, context=ctx, data_class=header.data_class) as w:
            while block := reader.read(1 << 20):
                w.write(block)
        return
    plain = env.decrypt(src.read(), tenant=tenant, context=ctx, data_class=header.data_class)
    dst.write(env.encrypt(plain, tenant=tenant, context=ctx, data_class=header.data_class))


# -- local directories ---------------------------------------------------------


def _local_one(
    env: Envelope, path: str, tenant: str, mode: str, ctx: Mapping[str, str], n: _Counts
) -> bool:
    """Rewrite one file; False when it was already current."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
        st = os.fstat(fh.fileno())
    n.read += len(head)
    header = parse_header(head)
    if not env.needs_rewrap(head[: header.length], tenant=tenant):
        return False
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "r+b") as out:
            if mode == "rewrap":
                new = env.rewrap(head[: header.length], tenant=tenant)
                with open(path, "rb") as src:
                    out.write(new)
                    src.seek(header.length)
                    while block := src.read(1 << 20):
                        out.write(block)
                n.written += len(new)
            else:
                with open(path, "rb") as src:
                    _reencrypt(env, src, out, head, tenant, ctx)
                n.written += out.tell()
            out.flush()
            os.fsync(out.fileno())
        with open(path, "rb") as again:
            if again.read(HEAD_BYTES) != head or os.fstat(again.fileno()).st_size != st.st_size:
                raise _ConflictError()
        os.replace(tmp, path)
        tmp = ""
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return True
    finally:
        if tmp:
            os.unlink(tmp)


# -- S3 ----------------------------------------------------------------------------


def _split(url: str) -> tuple[str, str]:
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InvalidInputError("an S3 prefix is s3://BUCKET/PREFIX")
    return bucket, prefix


def _s3(endpoint_url: str | None) -> Any:
    boto3 = require("boto3", extra="aws")
    return boto3.client("s3", endpoint_url=endpoint_url)


def _s3_one(
    env: Envelope,
    s3: Any,
    bucket: str,
    key: str,
    tenant: str,
    mode: str,
    ctx: Mapping[str, str],
    n: _Counts,
) -> bool:
    botocore = require("botocore.exceptions", extra="aws")
    try:
        got = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")
        head = got["Body"].read()
        etag = got["ETag"]
        size = int(got["ContentRange"].rsplit("/", 1)[1]) if "ContentRange" in got else len(head)
        n.read += len(head)
        header = parse_header(head)
        if not env.needs_rewrap(head[: header.length], tenant=tenant):
            return False
        if mode == "reencrypt":
            body = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
            with tempfile.SpooledTemporaryFile(max_size=PART_SIZE) as out:
                _reencrypt(env, body, out, head, tenant, ctx)  # type: ignore[arg-type]
                n.read += size
                out.seek(0, io.SEEK_END)
                n.written += out.tell()
                out.seek(0)
                s3.upload_fileobj(out, bucket, key)
            return True
        new = env.rewrap(head[: header.length], tenant=tenant)
        hlen = header.length
        if size <= PART_SIZE:
            data = (
                head
                if size <= len(head)
                else s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read()
            )
            if size > len(head):
                n.read += len(data)
            s3.put_object(Bucket=bucket, Key=key, Body=new + data[hlen:])
            n.written += size
            return True
        first = s3.get_object(
            Bucket=bucket, Key=key, IfMatch=etag, Range=f"bytes={hlen}-{PART_SIZE - 1}"
        )
        body = first["Body"].read()
        n.read += len(body)
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        try:
            parts = []
            r = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=new + body
            )
            n.written += len(new) + len(body)
            parts.append({"PartNumber": 1, "ETag": r["ETag"]})
            start, number = PART_SIZE, 2
            while start < size:
                end = min(size, start + _MAX_COPY) - 1
                r = s3.upload_part_copy(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumber=number,
                    CopySource={"Bucket": bucket, "Key": key},
                    CopySourceRange=f"bytes={start}-{end}",
                    CopySourceIfMatch=etag,
                )
                parts.append({"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]})
                n.copied += end - start + 1
                start, number = end + 1, number + 1
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
            upload = ""
        finally:
            if upload:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        return True
    except botocore.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("PreconditionFailed", "412"):
            raise _ConflictError() from None
        raise


# -- the partition task ------------------------------------------------------------


def _batch_task(
    url: str,
    keys: list[str],
    spec: EnvelopeSpec,
    tenant: str,
    mode: str,
    context: Context | None,
    endpoint_url: str | None,
    retries: int,
    run: str,
) -> PartitionResult:
    started = time.monotonic()
    n = _Counts()
    changed = current = conflicts = 0
    failures: list[BatchFailure] = []
    s3 = _s3(endpoint_url) if url.startswith("s3://") else None
    bucket = _split(url)[0] if s3 is not None else ""
    for key in keys:
        attempt = 0
        while True:
            try:
                env = open_for_run(spec, run)
                ctx = _context_for(context, key)
                if s3 is not None:
                    done = _s3_one(env, s3, bucket, key, tenant, mode, ctx, n)
                else:
                    done = _local_one(env, key, tenant, mode, ctx, n)
                changed += done
                current += not done
                break
            except _ConflictError:
                conflicts += 1
                break
            except TokenError as exc:
                failures.append(BatchFailure(key, failure_reason(exc)))
                break
            except RootKeyUnavailableError:
                attempt += 1
                if attempt > retries:
                    return PartitionResult(
                        f"{keys[0]}..{keys[-1]}",
                        worker=worker_address(),
                        committed=False,
                        stop_reason="root_unavailable",
                    )
                time.sleep(0.5 * 2 ** (attempt - 1))
    return PartitionResult(
        f"{keys[0]}..{keys[-1]}",
        seen=len(keys),
        changed=changed,
        current=current,
        conflicts=conflicts,
        failures=tuple(failures),
        worker=worker_address(),
        seconds=time.monotonic() - started,
        bytes_read=n.read,
        bytes_written=n.written,
        bytes_copied=n.copied,
    )


def _list(url: str, endpoint_url: str | None) -> list[str]:
    if url.startswith("s3://"):
        bucket, prefix = _split(url)
        pages = (
            _s3(endpoint_url)
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]
    root = url[len("file://") :] if url.startswith("file://") else url
    if not os.path.isdir(root):
        raise InvalidInputError("rewrap_objects takes s3://BUCKET/PREFIX or a directory")
    found: list[str] = []
    for directory, _, files in os.walk(root):
        found.extend(
            os.path.join(directory, f) for f in sorted(files) if not f.startswith(_TMP_PREFIX)
        )
    return sorted(found)


def rewrap_objects(
    url_prefix: str,
    *,
    spec: EnvelopeSpec,
    tenant: str,
    client: Any = None,
    workers: int | None = None,
    mode: str = "rewrap",
    context: Context | None = None,
    objects_per_task: int = 16,
    endpoint_url: str | None = None,
    retries: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> BatchReport:
    """Re-wrap (or re-encrypt) every token object under *url_prefix*.

    Args:
        url_prefix: ``s3://BUCKET/PREFIX`` (boto3 credentials from each worker's
            environment) or a local directory (``file:///dir`` or a path; every
            worker must see it at the same path).
        spec: how workers open the key store.
        tenant: the tenant the objects belong to.
        mode: ``"rewrap"`` (header only) or ``"reencrypt"`` (fresh data keys).
        context: the encryption context (re-encrypt only): a mapping, or a
            function of the object key returning one.
        objects_per_task: objects per Dask task.
        endpoint_url: an S3-compatible endpoint (no credentials in it).

    Returns:
        A :class:`BatchReport` with bytes read, sent and copied server-side.

    Raises:
        InvalidInputError: a bad prefix or mode.
        MissingExtraError: Dask (``batch``) or boto3 (``aws``) is missing.
    """
    check_mode(mode)
    if not isinstance(spec, EnvelopeSpec):
        raise InvalidInputError("spec is an EnvelopeSpec")
    if objects_per_task < 1:
        raise InvalidInputError("objects_per_task must be positive")
    keys = _list(url_prefix, endpoint_url)
    batches = [keys[i : i + objects_per_task] for i in range(0, len(keys), objects_per_task)]
    report = BatchReport(job=url_prefix, mode=mode, partitions=len(batches))
    if not batches:
        return report
    run = uuid.uuid4().hex
    items = [
        (url_prefix, b, spec, tenant, mode, context, endpoint_url, retries, run) for b in batches
    ]
    with client_for(client, workers=workers) as c:
        return run_all(c, _batch_task, items, report, progress=progress)
