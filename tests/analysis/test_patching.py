"""Where a cell may patch what is outside the notebook, read off its code."""

from __future__ import annotations

from nbcellar.analysis.patching import PatchTarget, patch_targets


def test_attributes_set_on_dotted_paths_are_patch_targets() -> None:
    source = "import statistics, argparse\nstatistics.mean = f\nargparse.Namespace.d = g\nx = 1"
    assert patch_targets(source) == (
        PatchTarget(("argparse", "Namespace"), "d"),
        PatchTarget(("statistics",), "mean"),
    )


def test_setattr_del_augmented_and_inside_functions() -> None:
    source = (
        "setattr(mod, 'flag', True)\ndelattr(mod, 'old')\ndel tools.CACHE\n"
        "Counter.n += 1\ndef setup():\n    lib.OPTION = 2\n"
    )
    assert set(patch_targets(source)) == {
        PatchTarget(("mod",), "flag"),
        PatchTarget(("mod",), "old"),
        PatchTarget(("tools",), "CACHE"),
        PatchTarget(("Counter",), "n"),
        PatchTarget(("lib",), "OPTION"),
    }


def test_constant_items_and_pandas_accessors() -> None:
    source = (
        "sys.modules['fake'] = fake\nd[key] = 1\n"
        "@pd.api.extensions.register_dataframe_accessor('geo')\nclass Geo:\n    pass\n"
    )
    assert set(patch_targets(source)) == {
        PatchTarget(("sys", "modules"), "fake", "item"),
        PatchTarget(("pd", "DataFrame"), "geo"),
    }


def test_code_without_assignments_or_that_does_not_parse_has_none() -> None:
    assert patch_targets("print(x)") == ()
    assert patch_targets("x = (") == ()
