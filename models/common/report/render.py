# SPDX-License-Identifier: Apache-2.0
"""The report as text (stdout) and the per-mesh decode estimate as a PNG bar chart (matplotlib: already in the
environment through ttnn, and a PNG opens anywhere)."""

OP_HEADER = ("#", "op", "host µs", "{metric}", "{estimate} µs", "program config; fidelity; dtype; options → output")
OP_WIDTHS = (3, 47, 9, 11, 12)
PLOT_SIZE_INCHES = (7, 4.5)
PLOT_DPI = 120


def human_bytes(count: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count:.0f} B"


def human_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.1f} µs"


def human_flops(count: float) -> str:
    return f"{count / 1e12:.2f} TFLOP" if count >= 1e12 else f"{count / 1e9:.2f} GFLOP"


def render_text(report: dict) -> str:
    sections = [_header(report), *(_module(m) for m in report["modules"]), _layer(report), _scaling(report)]
    if "precision" in report:
        sections.append(_precision(report["precision"], report["device"]["mesh"], report["measured"]["status"]))
    if "tttv1_comparison" in report:
        sections.append(_comparison(report["tttv1_comparison"]))
    return "\n\n".join("\n".join(section) for section in sections)


def _header(report: dict) -> list[str]:
    model, device, run, chip, t = report["model"], report["device"], report["run"], report["chip"], report["timings_s"]
    system = f", mock {device['system']} system" if "system" in device else ""
    warm = report["totals"]["decode_host_us"]
    return [
        f"TTTv2 decoder-layer report: {model['name']} on a {device['mesh']} mesh ({device['tier']} tier{system})",
        f"  model   dim {model['dim']}, {model['n_heads']} heads / {model['n_kv_heads']} KV heads x "
        f"{model['head_dim']}, MLP hidden {model['hidden_dim']}, {model['n_layers']} layers; {model['weights']}",
        f"  layer   {report['layer']}",
        f"  run     prefill {run['seq_len']} tokens (user 0); {run['decode_steps']} decode steps x {run['users']} "
        f"users (step 0 compiles, the rest are warm); KV cache {run['kv_cache_positions']} positions"
        + (f"; {run['layers']} layers (ops and module PCCs: the first's)" if run["layers"] > 1 else ""),
        f"  chip    {chip['name']}: DRAM {chip['dram_GBps']:.0f} GB/s, {chip['fp16_TFLOPS']:.0f} TFLOPS FP16, "
        f"{chip['blockfp8_TFLOPS']:.0f} TFLOPS BLOCKFP8, {chip['dram_GiB']:.0f} GiB ({chip['source']})",
        f"  time    weights {t['weights_s']:.1f} s, build {t['build_s']:.1f} s, prefill "
        f"{human_time(t['prefill_cold_s'] * 1e6)} cold / {human_time(t['prefill_warm_s'] * 1e6)} warm, decode step "
        f"{human_time(t['decode_cold_s'] * 1e6)} cold / {human_time(warm)} warm (host dispatch)",
    ]


def _module(module: dict) -> list[str]:
    lines = [f"{module['name']}: {module['class']}"]
    for label, key in (("weights per device", "weights"), ("KV cache per device", "kv_cache")):
        for tensor in module[key]:
            lines.append(f"  {label}: {tensor['name']} {_tensor(tensor)} = {human_bytes(tensor['bytes'])}")
    decode, prefill = module["decode"], module["prefill"]
    lines.append(
        f"  decode (warm step): {len(decode['ops'])} ops, host {human_time(decode['host_us'])}, DRAM reads "
        f"{human_bytes(decode['dram_read_bytes'])} → roofline {human_time(decode['roofline_us'])}"
    )
    lines += _ops(decode["ops"], "DRAM read", "roofline", lambda op: human_bytes(op["dram_read_bytes"]), "roofline_us")
    lines.append(
        f"  prefill (warm): {len(prefill['ops'])} ops, host {human_time(prefill['host_us'])}, "
        f"{human_flops(prefill['flops'])} → compute ≥ {human_time(prefill['compute_us'])}"
    )
    lines += _ops(prefill["ops"], "GFLOP", "compute", lambda op: f"{op['flops'] / 1e9:.3f}", "compute_us")
    return lines


def _ops(ops: list[dict], metric: str, estimate: str, amount, time_key: str) -> list[str]:
    header = [h.format(metric=metric, estimate=estimate) for h in OP_HEADER]
    lines = ["    " + _row(header)]
    for i, op in enumerate(ops, 1):
        cells = [str(i), op["op"].removeprefix("ttnn."), f"{op['host_us']:.1f}", amount(op), f"{op[time_key]:.2f}"]
        lines.append("    " + _row([*cells, _details(op)]))
    return lines


def _row(cells) -> str:
    pairs = enumerate(zip(cells, OP_WIDTHS, strict=False))  # the last cell has no fixed width
    fixed = [cell.ljust(width) if i < 2 else cell.rjust(width) for i, (cell, width) in pairs]
    return "  ".join([*fixed, cells[-1]])


def _details(op: dict) -> str:
    parts = [op["program_config"]["summary"] if op["program_config"] else None, op["math_fidelity"]]
    parts.append(f"dtype {op['dtype']}" if op["dtype"] else None)
    parts.append(" ".join(f"{name}={value}" for name, value in op["other_options"].items()))
    if op["outputs"]:
        parts.append("→ " + _tensor(op["outputs"][0]))
    return "; ".join(p for p in parts if p)


def _tensor(tensor: dict) -> str:
    return f"{tensor['shape']} {tensor['dtype']} {tensor['memory']}"


def _layer(report: dict) -> list[str]:
    totals, measured, chip, run = report["totals"], report["measured"], report["chip"], report["run"]
    warm = totals["decode_host_us_per_step"]
    lines = [
        "layer (per device)",
        f"  weights {human_bytes(totals['weight_bytes_per_device'])}, KV cache "
        f"{human_bytes(totals['kv_cache_bytes_per_device'])}",
        f"  decode per token: DRAM reads {human_bytes(totals['decode_dram_read_bytes'])} → roofline "
        f"{human_time(totals['decode_roofline_us'])} at {chip['dram_GBps']:.0f} GB/s; host dispatch "
        f"{human_time(totals['decode_host_us'])} per step (warm, median of {len(warm)})",
        f"  prefill {run['seq_len']} tokens: {human_flops(totals['prefill_flops'])} → compute ≥ "
        f"{human_time(totals['prefill_compute_us'])}; host dispatch {human_time(totals['prefill_host_us'])} (warm)",
    ]
    if measured["pcc"] is None:
        return [*lines, f"  PCC vs the HF decoder layer: {measured['status']}"]
    if measured["prefill_us"] is not None:
        lines.append(
            f"  measured ({measured['time']}): prefill {human_time(measured['prefill_us'])}, decode step "
            f"{human_time(measured['decode_us'])}"
        )
    return [*lines, *_pcc_table(measured)]


def _pcc_table(measured: dict) -> list[str]:
    """PCC vs HF: one row per module and the layer, one column per run (prefill, decode steps); ✗ below threshold."""
    runs = list(measured["pcc"])
    parts = list(measured["thresholds"])
    width = max(len(part) for part in parts)
    heads = [run.replace("decode step ", "decode ") for run in runs]
    lines = [
        f"  PCC vs the HF decoder layer, user 0 ({measured['status']})",
        "    " + "  ".join([f"{'':<{width}}", *(f"{h:>9}" for h in heads), "  min PCC"]),
    ]
    for part in parts:
        values = [f"{measured['pcc'][run][part]:>9.5f}" for run in runs]
        low = measured["min_pcc"][part] < measured["thresholds"][part]
        verdict = f"  {'✗ below' if low else '≥'} {measured['thresholds'][part]}"
        lines.append("    " + "  ".join([f"{part:<{width}}", *values, verdict]))
    return lines


def _scaling(report: dict) -> list[str]:
    scaling, here, n_layers = report["scaling"], report["device"]["mesh"], report["model"]["n_layers"]
    lines = [f"decode time per layer and token by mesh ({scaling['basis']})"]
    for row in scaling["meshes"]:
        mark = "   ← this run" if row["mesh"] == here else ""
        if not row["supported"]:
            lines.append(f"  {row['mesh']:<4}  n/a: {row['reason']}{mark}")
            continue
        fits = "fits" if row["model_fits_dram"] else "does not fit"
        weights, kv = human_bytes(row["weight_bytes_per_device"]), human_bytes(row["kv_cache_bytes_per_device"])
        model = human_bytes(row["model_bytes_per_device"])
        lines.append(
            f"  {row['mesh']:<4}  {human_time(row['decode_us']):>9}   weights {weights} + KV {kv} per device "
            f"({row['decode_users_per_device']} users); all {n_layers} layers {model} per device ({fits} in DRAM){mark}"
        )
    return lines


def _precision(table: dict, mesh: str, numbers: str) -> list[str]:
    """One row per recipe: the lowest PCC per module and of the layer over the prefill and decode steps, weight and
    KV bytes per device, the decode roofline; then where each recipe differs from TTTv2's defaults."""
    parts = ("attention_norm", "attention", "ffn_norm", "mlp", "layer")
    lines = [f"precision recipes on this {mesh} mesh (PCC: lowest over prefill and decode steps, user 0; {numbers})"]
    differences = table["tttv2_differs_from_tttv1"]
    if differences:
        lines.append(f"  TTTv2's defaults differ from TTTv1's choice ({table['tttv1_default']}) here; both rows shown:")
        lines += [f"      {d['field']}: TTTv1 {d['tttv1']}, TTTv2 {d['tttv2']}" for d in differences]
    elif table["tttv1_unavailable"]:
        lines.append(f"  TTTv1's choice unknown: {table['tttv1_unavailable']}")
    width = max(len(row["recipe"]) for row in table["rows"])
    header = [f"{'recipe':<{width}}", *(f"{part:>14}" for part in parts), "weights/dev", "   KV/dev", "decode roofline"]
    lines.append("    " + "  ".join(header))
    for row in table["rows"]:
        if "unavailable" in row:
            lines.append(f"    {row['recipe']:<{width}}  n/a: {row['unavailable']}")
            continue
        pcc = [f"{row['min_pcc'][part]:>14.5f}" if row["min_pcc"] else f"{'-':>14}" for part in parts]
        sizes = [
            f"{human_bytes(row['weight_bytes_per_device']):>11}",
            f"{human_bytes(row['kv_cache_bytes_per_device']):>9}",
        ]
        lines.append(
            "    " + "  ".join([f"{row['recipe']:<{width}}", *pcc, *sizes, human_time(row["decode_roofline_us"])])
        )
    for row in table["rows"]:
        lines.append(f"  {row['recipe']}: {row['description']}")
        for name, fields in row.get("changes", {}).items():
            changed = ", ".join(f"{field} {value}" for field, value in fields.items())
            lines.append(f"      {name} (vs TTTv2's defaults): {changed}")
    return lines


def _comparison(comparison: dict) -> list[str]:
    lines = [
        f"TTTv1 vs TTTv2 (TTTv1: {comparison['source']}; prefill configs at seq-len {comparison['seq_len']}; "
        "one value: both chose it, ≠: they differ)"
    ]
    if "unavailable" in comparison:
        return [*lines, f"  {comparison['unavailable']}"]
    for module in comparison["modules"]:
        lines.append(f"  {module['name']}: {module['class']}")
        if "unavailable" in module:
            lines.append(f"    {module['unavailable']}")
            continue
        width = max((len(row["field"]) for row in module["rows"]), default=0)
        for row in module["rows"]:
            if row["same"]:
                lines.append(f"      {row['field']:<{width}}  {row['tttv1']}")
            else:
                lines.append(f"    ≠ {row['field']:<{width}}  TTTv1 {row['tttv1']}")
                lines.append(f"      {'':<{width}}  TTTv2 {row['tttv2']}")
        if module["tttv2_only"]:
            decided = ", ".join(f"{row['field']} {row['tttv2']}" for row in module["tttv2_only"])
            lines.append(f"    decided by TTTv2 alone: {decided}")
    if comparison["compared"]:
        lines.append(f"  {comparison['differences']} differences in {comparison['compared']} configs")
    else:
        lines.append("  no config compared: TTTv1 has no counterpart on this mesh")
    return lines


def write_plot(report: dict, path) -> None:
    """Bar chart of the analytic decode estimate per mesh; meshes the model cannot be split over are labelled."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    scaling, chip = report["scaling"], report["chip"]
    rows = scaling["meshes"]
    figure, axes = pyplot.subplots(figsize=PLOT_SIZE_INCHES)
    names = [row["mesh"] for row in rows]
    values = [row.get("decode_us", 0.0) for row in rows]
    colours = ["tab:orange" if row["mesh"] == report["device"]["mesh"] else "tab:blue" for row in rows]
    bars = axes.bar(names, values, color=colours)
    for bar, row in zip(bars, rows, strict=True):
        if "decode_us" not in row:
            label = "heads do not split"
        else:
            label = human_time(row["decode_us"]) + ("" if row["supported"] else "\nL1 limit")
            label += "" if row["model_fits_dram"] else "\nall layers exceed DRAM"
        axes.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom")
    axes.set_xlabel("mesh (orange: this run)")
    axes.set_ylabel("µs per layer and decode token")
    axes.set_title(f"{report['model']['name']}: estimated decode time per layer")
    figure.text(
        0.01, 0.01, f"DRAM roofline at {chip['dram_GBps']:.0f} GB/s per chip ({chip['source']}); analytic, not run",
        fontsize=7,
    )  # fmt: skip
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path, dpi=PLOT_DPI)
    pyplot.close(figure)
