"""The numbers that cut the backends' work and choose which kernel or backend serves a call.

Each constant says what it controls and why it has its value. The Numba kernels read theirs
as compile-time constants, which Numba's cache does not check against this file: the tests key
the cache on the whole package's source (``tests/conftest.py``); elsewhere, clear Numba's cache
after editing a value here.
"""

# -- the Numba kernels: blocks and chunks ----------------------------------------------------

BLOCK = 64
"""Examples per block of the Numba kernels. Each weight loaded serves a whole block; the
activations and δ of one block (``2 · BLOCK · Σ_{l≥2} s_l`` numbers) stay in the core's L1/L2
cache."""

FLUSH_BLOCKS = 16
"""Blocks whose Δ contributions are summed in the dtype of θ before being added into the
chunk's float64 accumulator: in float32 no partial sum runs over more than 1024 examples."""

MIN_CHUNK = 32
"""Fewest examples per chunk: below this, thread start-up costs more than the chunk's work."""

MAX_CHUNKS = 16
"""Chunks per call at most. A constant, not the machine's thread count, so that the chunk
boundaries, and with them the order of every sum, depend on m only: J and ∇J are bitwise the
same for any ``NUMBA_NUM_THREADS``. Each chunk holds a Δ accumulator of P float64
(``MAX_CHUNKS · P · 8`` bytes, 13 MB for 784-128-10). 16 keeps up to 16 threads busy, as the
batch kernel's ``BATCH_BLOCKS`` and ``BATCH_TASKS`` do; beyond, the chunks would have to grow
with the thread count, and the results with them."""

REDUCE_COLUMNS = 4096
"""Columns of the chunks' Δ rows each task of their threaded sum adds (32 KiB of float64)."""

REDUCE_PARALLEL_MIN = 1 << 17
"""Numbers in the chunks' Δ rows (chunks × P) from which the chunked kernel sums them over the
threads; fewer are added on one thread, which is quicker than starting the threads. The
threaded sum gains a few per cent on large P only (0.92 of the time on 784-512-256-10)."""

# -- the Numba kernels: which loop and which layout --------------------------------------------

NARROW = 32
"""Units below which a layer is narrow: its forward product is taken as dot products of rows
(``_add_dot_products``), since the vector loop of ``_add_product`` runs along the few columns of
OUT and so mostly in its remainder (400 → 10 units on a block of 64: 3.2 times as long); a
network whose layers after the input are all narrow keeps its blocks unit-major."""

COPY_PARALLEL_MIN = 32_768
"""Weights (Σ s_l s_(l+1)) from which the chunked kernel, its blocks as rows, copies W(l) and
W(l)ᵀ over the threads, a unit per task; fewer are copied on one thread, as two threads writing
columns of the same short rows of W(l)ᵀ share their cache lines."""

# -- the Numba kernels: the batch kernel -------------------------------------------------------

BATCH_ROWS = 1024
"""Most examples of a call the batch kernel serves; beyond, its gain over the chunked kernel,
whose per-chunk Δ accumulators it avoids, is gone (mixed from 2048 rows). Up to 1024 rows no
sum in the dtype of θ runs over more examples than the chunked kernel's
(``FLUSH_BLOCKS · BLOCK``)."""

BATCH_MIN_PARAMS = 50_000
"""Fewest weights of a network whose mini-batches take the batch kernel: below, the chunked
kernel's P-sized accumulator per chunk costs little, and it is the quicker one (400-25-10,
P = 10,285, took up to 1.23 times as long in the batch kernel)."""

BATCH_BLOCKS = 16
"""Blocks the batch kernel cuts its examples into (whole groups of 4 rows, at most ``BLOCK``
rows up to b = 1024 but for the last block's b % 4 extra rows), so that even 64 examples keep
every thread busy in the forward and δ pass. The rows of a block depend only on the batch size,
never on the number of threads."""

BATCH_TASKS = 16
"""Groups of equal work the Δ products of the batch kernel are cut into, one ``prange``
iteration each. Numba hands each thread an equal share of consecutive iterations, so groups of
equal work keep the threads equally busy; a task's block of Δ(l)ᵀ stays in L1 while the
examples' rows of δ(l+1) stream through it."""

PASS_BYTES = 256 * 1024
"""Bytes of δ(l+1) rows a Δ task of the batch kernel streams through its block of Δ(l)ᵀ at a
time, so that they stay in the core's L2 (1 MiB on this machine class) across the block's
four-column passes. The examples are taken in the same order for any value (the passes have a
multiple of 4 rows), so results do not change."""

# -- the NumPy backend, and "auto" -------------------------------------------------------------

NUMPY_BLOCK_ROWS = 4096
"""Rows per block of the NumPy backend, so that the activations it holds at once stay bounded
whatever m is."""

AUTO_NUMPY_MIN_WEIGHTS = 300_000
"""Weights of the largest Θ(l) from which ``"auto"`` gives calls on many rows (see
``AUTO_NUMPY_MIN_ROWS``) to ``"numpy"``: there BLAS's cache blocking beats the Numba kernels
(1024-2048-10 on 1,024 rows: ``"numba-parallel"`` took 1.7 times NumPy's time), which are the
faster up to 201k weights in a Θ(l), and on small batches of any network."""

AUTO_NUMPY_MIN_ROWS = 257
"""Rows of a call from which ``"auto"`` gives a network with a Θ(l) of
``AUTO_NUMPY_MIN_WEIGHTS`` weights or more to ``"numpy"`` (a full batch counts as many); every
other call goes to ``"numba-parallel"``, in float64 and float32 alike."""

# -- the Numba kernels: sparse X ---------------------------------------------------------------

SPARSE_SEGMENT = 8192
"""Examples the sparse kernel takes at a time: its z(1) and δ(1), held for a segment
(``2 · SPARSE_SEGMENT · s_2`` numbers), stay bounded whatever m is; a mini-batch is one
segment."""

TILE_UNITS = 8
"""Units of layer 1 the sparse kernel takes together (a group): their rows of Θ(0) are
interleaved into a tile whose row k holds the group's weights of input k, so that each nonzero
reads one cache line (float64) and feeds eight running sums, and their Δ(0) rows are summed
the same way. Eight is written into the kernel's loops (``_group_inputs``)."""
