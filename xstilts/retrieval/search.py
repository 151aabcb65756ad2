"""Exact inner-product top-k search with two backends, and the choice between them.

Every retrieval task of the kit ranks by inner product of L2-normalised vectors (= cosine): Tatoeba (top-1),
BUCC margin mining (k = 4 in both directions) and the dual-encoder tasks (top-20 over the candidate pool).

* ``faiss``: ``faiss.IndexFlatIP`` (exact), on the GPU when the installed faiss has GPU support (a plain
  ``pip install faiss-cpu``, the kit's requirement, has none). Approximate indexes (BUCC ``--index hnsw``) are
  FAISS-only.
* ``torch``: the same exact search as a chunked matrix product + ``torch.topk`` (:func:`torch_topk`), on CUDA
  when there is a device, else on the CPU (where it is what the tests compare against FAISS). Inputs are
  float32 (default) or bfloat16; products are accumulated **and returned** in float32 either way (CUDA:
  ``torch.mm(..., out_dtype=torch.float32)`` on bf16 tensor cores; CPU: bf16 values upcast, which is exact, then
  an fp32 product). float32 on CUDA runs with TF32 off (``float32_matmul_precision`` "highest" for the call).
  Chunk sizes come from a memory budget: half of the free device memory at the call on CUDA
  (``torch.cuda.mem_get_info`` plus what PyTorch's allocator holds unused), a fixed 256 MiB on the CPU, or an
  explicit ``memory_bytes`` (:func:`plan_chunks`). A CUDA out-of-memory error halves the budget and retries.

``auto`` (:func:`resolve`) takes torch when CUDA is available and FAISS otherwise; approximate indexes always
take FAISS. The resolved :class:`Search` is logged, and its :meth:`Search.describe` (backend, device, dtype,
accumulation, the chunk sizes used) is stored with every result.

Agreement with FAISS (tests/test_search.py): identical neighbours except among exactly tied scores, scores
within float32 rounding (1e-5 here); identical mined BUCC pairs and F1, identical dual-encoder mAP@20. With
bfloat16 inputs each vector component keeps 8 significant bits: a cosine moves by up to about 2^-8 = 0.004
(in practice ~1e-3 for 1,024-dim unit vectors), so neighbours whose cosines differ by less than that can swap
and margin scores move in the third decimal; float32 is the default for that reason.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError, choices_error

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "faiss", "torch")
DTYPES = ("float32", "bfloat16")
CPU_MEMORY_BYTES = 256 * 2**20  # the torch path's working memory on the CPU (fixed, so CPU runs are reproducible)
CUDA_MEMORY_FRACTION = 0.5  # of the free device memory at the call: room for topk's workspace and fragmentation
OOM_RETRIES = 3


def check_choices(backend: str, dtype: str = "float32", flag: str = "--search_backend",
                  dtype_flag: str = "--search_dtype") -> None:
    """UsageError naming the bad value and the valid ones (before any expensive work)."""
    if backend not in BACKENDS:
        raise choices_error(flag, backend, BACKENDS)
    if dtype not in DTYPES:
        raise choices_error(dtype_flag, dtype, DTYPES)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def faiss_gpus() -> int:
    """GPUs the installed faiss can use (0 for faiss-cpu builds)."""
    import faiss

    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except Exception:  # pragma: no cover - defensive: broken CUDA setups
        return 0


@dataclass
class Search:
    """A resolved search backend (:func:`resolve`), and the chunk sizes it used (torch)."""

    backend: str  # "faiss" | "torch"
    device: str  # torch: "cuda" | "cpu"; faiss: "gpu" | "cpu"
    dtype: str = "float32"  # input dtype (torch); FAISS searches float32
    requested: str = "auto"
    reason: str = "requested"
    memory_bytes: int | None = None  # torch: fixed working-memory budget; None = from the device (see module doc)
    index: str = "flat"  # FAISS index of the searches (BUCC --index; "hnsw" is approximate); torch: always exact
    chunks: list = field(default_factory=list)  # torch: (query_chunk, database_chunk) of every call, for the record

    def topk(self, queries, database, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``min(k, len(database))`` highest inner products of each query: ``(sims float32, ids int64)``
        of shape ``[len(queries), min(k, len(database))]``, best first."""
        if self.backend == "torch":
            sims, ids, plan = torch_topk(queries, database, k, device=self.device, dtype=self.dtype,
                                         memory_bytes=self.memory_bytes)
            if plan not in self.chunks:
                self.chunks.append(plan)
            return sims, ids
        return faiss_topk(queries, database, k, use_gpu=self.device == "gpu")

    def describe(self) -> dict:
        """What results.json records (``retrieval.search``) and the log says."""
        out = {"backend": self.backend, "requested": self.requested, "reason": self.reason, "device": self.device,
               "dtype": self.dtype, "exact": self.index == "flat"}
        if self.backend == "torch":
            out.update(accumulation="float32", method="chunked matrix product + torch.topk",
                       memory_budget=(f"{self.memory_bytes} bytes (fixed)" if self.memory_bytes else
                                      f"{CUDA_MEMORY_FRACTION:g} x free device memory" if self.device == "cuda"
                                      else f"{CPU_MEMORY_BYTES} bytes (fixed, CPU)"),
                       chunks_used=[{"query_chunk": q, "database_chunk": d} for q, d in self.chunks])
        else:
            out.update(accumulation="float32", method="faiss.IndexFlatIP" if self.index == "flat" else
                       f"faiss.IndexHNSWFlat (approximate, index={self.index})")
        return out

    def __str__(self) -> str:
        what = f"{self.backend} on {self.device}"
        if self.backend == "torch":
            what += f" ({self.dtype} inputs, float32 accumulation)"
        return f"{what}; {self.reason}"


def resolve(requested: str = "auto", *, dtype: str = "float32", index: str = "flat", cuda: bool | None = None,
            memory_bytes: int | None = None) -> Search:
    """The backend that ``requested`` means on this machine (see the module doc). Raises UsageError for a
    combination that cannot run: torch with an approximate index, bfloat16 with FAISS."""
    check_choices(requested, dtype)
    cuda = _cuda_available() if cuda is None else cuda
    if index != "flat":
        if requested == "torch":
            raise UsageError(f"--search_backend torch is exact search; --index {index} is a FAISS approximate index: "
                             f"use --search_backend faiss (or auto), or --index flat")
        backend, reason = "faiss", f"index {index} (approximate) is FAISS-only"
    elif requested == "auto":
        backend, reason = ("torch", "auto: CUDA is available") if cuda else ("faiss", "auto: no CUDA device")
    else:
        backend, reason = requested, "requested"
    if backend == "torch":
        device = "cuda" if cuda else "cpu"
        if device == "cuda" and dtype == "bfloat16" and _cuda_available():
            _check_bf16_product()
    else:
        if dtype != "float32":
            raise UsageError(f"--search_dtype {dtype} applies to the torch backend, but the search resolves to FAISS "
                             f"({reason}); FAISS searches float32. Use --search_backend torch, or --search_dtype float32")
        device = "gpu" if index == "flat" and cuda and faiss_gpus() > 0 else "cpu"
    return Search(backend, device, dtype if backend == "torch" else "float32", requested, reason, memory_bytes, index)


def _check_bf16_product() -> None:
    """bfloat16 search on CUDA needs ``torch.mm(..., out_dtype=torch.float32)``: tried once, before any work."""
    import torch

    a = torch.ones((2, 2), dtype=torch.bfloat16, device="cuda")
    try:
        out = torch.mm(a, a.T, out_dtype=torch.float32)
    except (TypeError, RuntimeError, NotImplementedError) as e:
        raise UsageError(f"--search_dtype bfloat16: this torch ({torch.__version__}) cannot multiply bfloat16 into "
                         f"float32 on CUDA (torch.mm out_dtype: {e}); use --search_dtype float32") from None
    if out.dtype != torch.float32:  # pragma: no cover - defensive
        raise UsageError(f"--search_dtype bfloat16: torch.mm returned {out.dtype}, not float32; use float32")


# --------------------------------------------------------------------------------------------- FAISS

def as_matrix(a, name: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n, dim], got shape {a.shape}")
    return a


def faiss_topk(queries, database, k: int, use_gpu: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product k-NN with ``faiss.IndexFlatIP`` (on all GPUs when ``use_gpu``)."""
    import faiss

    q, db = as_matrix(queries, "queries"), as_matrix(database, "database")
    k = min(k, len(db))
    if len(q) == 0 or k == 0:
        return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)
    index = faiss.IndexFlatIP(db.shape[1])
    if use_gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(db)
    return index.search(q, k)


# --------------------------------------------------------------------------------------------- torch

def plan_chunks(n_queries: int, n_db: int, dim: int, k: int, itemsize: int, budget_bytes: int) -> tuple[int, int]:
    """``(query_chunk, database_chunk)`` rows that fit ``budget_bytes`` of working memory.

    The running top-k of every query (``n_queries x k`` float32 scores + int64 ids) is kept first; the database
    chunk takes at most half of the rest (the whole database when it fits); the remainder holds a query chunk
    (its rows, its float32 score block ``[query_chunk, database_chunk]`` counted twice: the product and
    ``topk``'s workspace, and its merged top-k). Both are at least 1 row, so a tiny budget still runs."""
    row = dim * itemsize
    budget = budget_bytes - n_queries * k * 12
    db_chunk = int(max(1, min(n_db, (budget // 2) // row)))
    rest = budget - db_chunk * row
    per_query = row + 2 * 4 * db_chunk + 2 * 12 * k
    q_chunk = int(max(1, min(n_queries, rest // per_query)))
    return q_chunk, db_chunk


def memory_budget(device: str) -> int:
    """Working memory for one search: CUDA_MEMORY_FRACTION of the free device memory (what the driver reports
    free plus what PyTorch's caching allocator holds unused), or CPU_MEMORY_BYTES on the CPU."""
    if device != "cuda":
        return CPU_MEMORY_BYTES
    import torch

    free, _ = torch.cuda.mem_get_info()
    cached = torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
    return int(CUDA_MEMORY_FRACTION * (free + cached))


@contextlib.contextmanager
def _ieee_fp32():
    """float32 products in full precision (no TF32) for the duration of a search; the setting is restored."""
    import torch

    before = torch.get_float32_matmul_precision()
    if before != "highest":
        torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        if before != "highest":
            torch.set_float32_matmul_precision(before)


def _product(q, db):
    """``q @ db.T`` as float32 whatever the input dtype (float32 accumulation)."""
    import torch

    if q.dtype == torch.float32:
        return q @ db.T
    if q.is_cuda:
        return torch.mm(q, db.T, out_dtype=torch.float32)
    return q.float() @ db.float().T  # CPU: bf16 -> fp32 is exact; the product is then an fp32 product


def _search(q: np.ndarray, db: np.ndarray, k: int, device: str, dtype, q_chunk: int, db_chunk: int):
    import torch

    best_s = torch.full((len(q), k), float("-inf"), dtype=torch.float32, device=device)
    best_i = torch.full((len(q), k), -1, dtype=torch.int64, device=device)
    for d0 in range(0, len(db), db_chunk):
        dbt = torch.from_numpy(db[d0:d0 + db_chunk]).to(device=device, dtype=dtype)
        for q0 in range(0, len(q), q_chunk):
            qt = torch.from_numpy(q[q0:q0 + q_chunk]).to(device=device, dtype=dtype)
            s, i = torch.topk(_product(qt, dbt), min(k, len(dbt)), dim=1)
            s = torch.cat([best_s[q0:q0 + q_chunk], s], dim=1)  # merge with the running top-k
            i = torch.cat([best_i[q0:q0 + q_chunk], i + d0], dim=1)
            s, j = torch.topk(s, k, dim=1)
            best_s[q0:q0 + q_chunk], best_i[q0:q0 + q_chunk] = s, torch.gather(i, 1, j)
            del qt, s, i, j
        del dbt
    return best_s.cpu().numpy(), best_i.cpu().numpy()


def torch_topk(queries, database, k: int, *, device: str = "cpu", dtype: str = "float32",
               memory_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Exact inner-product k-NN as a chunked matrix product + ``torch.topk``.

    Returns ``(sims float32 [nq, k'], ids int64 [nq, k'], (query_chunk, database_chunk))`` with
    ``k' = min(k, len(database))``, best first. The database is read in chunks (each moved to ``device`` once),
    the queries in chunks per database chunk; every query keeps a running top-k on the device."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    q, db = as_matrix(queries, "queries"), as_matrix(database, "database")
    if len(q) and len(db) and q.shape[1] != db.shape[1]:
        raise ValueError(f"dimension mismatch: queries have {q.shape[1]}, database has {db.shape[1]}")
    k = min(k, len(db))
    if len(q) == 0 or k == 0:
        return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64), (0, 0)
    tdtype = getattr(torch, dtype)
    itemsize = torch.tensor([], dtype=tdtype).element_size()
    budget = memory_bytes or memory_budget(device)
    for attempt in range(OOM_RETRIES + 1):
        plan = plan_chunks(len(q), len(db), q.shape[1], k, itemsize, budget)
        try:
            with torch.inference_mode(), _ieee_fp32():
                sims, ids = _search(q, db, k, device, tdtype, *plan)
            break
        except torch.OutOfMemoryError:
            if attempt == OOM_RETRIES:
                raise
        # outside the handler: the failed attempt's tensors are released with its traceback
        budget //= 2
        logger.warning("search: out of device memory with chunks %s; retrying with half the budget (%d bytes)",
                       plan, budget)
        if device == "cuda":
            torch.cuda.empty_cache()
    if plan[1] < len(db) or plan[0] < len(q):
        logger.debug("search: %d x %d x %d on %s (%s) in chunks of %d queries x %d database rows", len(q), len(db),
                     q.shape[1], device, dtype, *plan)
    return sims, ids, plan
