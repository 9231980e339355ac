"""The FPT trainable set expressed as a PEFT config, for users who train and share PEFT adapters."""

from __future__ import annotations

from peft import LNTuningConfig

from .modeling_fpt import FPTModel


def fpt_peft_config(model: FPTModel) -> LNTuningConfig:
    """An `LNTuningConfig` whose trainable set equals `model`'s FPT policy (norms + positions + new layers).

    Use: `peft_model = get_peft_model(model, fpt_peft_config(model))`; then `peft_model.save_pretrained(dir)`
    writes an adapter and `PeftModel.from_pretrained(model, dir)` loads it back.
    """
    groups = set(model.config.trainable_groups)
    unsupported = groups - {"input", "output", "positions", "norms"}
    if unsupported:
        raise ValueError(f"PEFT interop covers the fpt / output_only policies; {sorted(unsupported)} cannot be adapters.")
    by_group = model.parameter_groups()
    module_of = lambda name: name.rsplit(".", 1)[0]  # noqa: E731
    norms = sorted({module_of(n) for n, g in by_group.items() if g == "norms"}) if "norms" in groups else []
    to_save = []
    if "input" in groups:
        to_save += sorted({n.split(".")[0] for n, g in by_group.items() if g == "input"})  # input layer, position table, sinks
    if "output" in groups:
        to_save.append("head")
    if "positions" in groups:
        to_save += sorted({module_of(n) for n, g in by_group.items() if g == "positions"})
    if not norms:
        raise ValueError("LNTuningConfig needs at least one norm module; this policy trains none.")
    return LNTuningConfig(target_modules=norms, modules_to_save=to_save)
