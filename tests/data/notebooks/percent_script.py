# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Percent script
#
# A jupytext percent-format script.

# %%
import numpy as np

# %% tags=["parameters"]
seed = 1
size = 10

# %%
rng = np.random.default_rng(seed)
data = rng.normal(size=size)

# %%
print(f"mean = {data.mean():.3f}")
