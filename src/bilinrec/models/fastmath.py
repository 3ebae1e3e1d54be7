"""The floating-point freedoms every compiled (Numba) kernel of the package is given."""

#: Reassociation (vectorised dot products) and fused multiply-add, nothing more. Not ``arcp`` or
#: ``afn``: with them a kernel compiled in the running process and the same kernel loaded from
#: Numba's on-disk cache gave different results (the CG solver's float32 fits differed in the 7th
#: digit), so a workflow's tables depended on which job happened to compile a kernel first. Not
#: ``nnan``/``ninf``: the positive-definiteness checks and the objective must see NaNs.
FASTMATH = {"reassoc", "contract"}
