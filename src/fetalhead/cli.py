"""The ``fetalhead`` command line: one sub-command for each job.

Exit codes: 0 all went well; 1 something failed (a file not measured, data
errors found, ...); 2 the command itself was used wrongly (argparse).
"""

from __future__ import annotations

import argparse
import os
import json
import sqlite3
import sys
from pathlib import Path

from .clinical.biometry import CHARTS, DEFAULT_CHART

__all__ = ["main"]


def _frames(text: str):
    from .scans.cine import parse_frames

    try:
        return parse_frames(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _gestational_age(text: str) -> float:
    """``--ga-weeks``: weeks+days as clinicians write them (``20+3``), or weeks as a number (``20.43``)."""
    from .outputs.display import GestationalAgeFormatError, parse_gestational_age

    try:
        return parse_gestational_age(text, decimal_weeks=True)
    except GestationalAgeFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _command_line(args) -> str:
    return "fetalhead " + " ".join(args.argv)


def _cmd_export(args) -> int:
    try:
        from .training.export import export_onnx
    except ImportError as exc:
        print(f"fetalhead export needs PyTorch: pip install 'fetalhead[train]' ({exc})", file=sys.stderr)
        return 1
    meta = export_onnx(args.checkpoint, args.out, command=args.train_command or "")
    print(f"exported {args.out} ({meta['size_bytes'] / 1e6:.2f} MB, sha256 {meta['sha256']})")
    if args.weights:
        from .training.export import save_weights

        print(f"torch weights written to {save_weights(args.checkpoint, args.weights)}")
    return 0


def _cmd_train(args) -> int:
    try:
        from .training.train import TrainConfig, train
    except ImportError as exc:
        print(f"fetalhead train needs PyTorch: pip install 'fetalhead[train]' ({exc})", file=sys.stderr)
        return 1
    cfg = TrainConfig(data=args.data, out=args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed, threads=args.threads,
                      max_train_images=args.max_train_images, max_val_images=args.max_val_images,
                      n_folds=args.folds, fold=args.fold if args.folds else -1, val_every=args.val_every,
                      stem_stride=args.stem_stride, scan_defects=args.scan_defect_rate > 0,
                      scan_defect_rate=max(args.scan_defect_rate, 0.0),
                      init=args.init or "", ema_decay=args.ema_decay,
                      bf16={"auto": None, "on": True, "off": False}[args.bf16], command=_command_line(args))
    if args.folds and not 0 <= args.fold < args.folds:
        print(f"fetalhead train: --fold must lie in 0 .. {args.folds - 1}", file=sys.stderr)
        return 2
    try:
        result = train(cfg, progress=not args.no_progress)
    except ValueError as exc:  # a run folder of other settings, no labelled images, ...
        print(f"fetalhead train: {exc}", file=sys.stderr)
        return 2
    if args.export:
        from .training.export import export_onnx

        meta = export_onnx(Path(args.out) / "last.pt", args.export, command=_command_line(args))
        print(f"exported {args.export} (sha256 {meta['sha256'][:12]}...)")
    print(json.dumps(result["history"][-1] if result["history"] else {}, indent=2))
    return 0


def _cmd_quantize(args) -> int:
    try:
        from .model.quantize import quantize_model
    except ImportError as exc:
        print(f"fetalhead quantize needs the 'train' extra (onnx): {exc}", file=sys.stderr)
        return 1
    from .scans.datasets import DatasetError
    from .model.runtime import default_model_path

    try:
        meta = quantize_model(args.model or default_model_path("fp32"), args.data, args.out, n_images=args.images)
    except (DatasetError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"INT8 model written (sha256 {meta['sha256'][:12]}..., {meta['size_bytes'] / 1e6:.2f} MB)", file=sys.stderr)
    return 0


def _cmd_calibrate(args) -> int:
    from .studies.calibration import calibrate_model
    from .scans.datasets import DatasetError
    from .model.runtime import HeadModel, ModelError

    try:
        model = HeadModel(args.model, threads=args.threads)
        if args.refine_passes:
            import dataclasses

            model.pipeline_config = dataclasses.replace(model.pipeline_config, refine_passes=args.refine_passes)
        folds = [HeadModel(f, threads=args.threads, verify=False) for f in args.fold_models or []]
        calibrate_model(args.data, model, args.out, limit=args.limit, fold_models=folds or None,
                        records_cache=args.records_cache,
                        progress=None if args.no_progress else
                        (lambda i, n: print(f"\r{i}/{n} images", end="" if i < n else "\n", file=sys.stderr)))
    except (DatasetError, ModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_check_data(args) -> int:
    from .studies.datacheck import check_dataset, write_json

    report = check_dataset(args.path, hc_tolerance_mm=args.hc_tolerance_mm, progress=not args.no_progress)
    print(report.text())
    if args.json:
        write_json(report, args.json)
        print(f"report written to {args.json}")
    return 1 if report.errors else 0


def _cmd_evaluate(args) -> int:
    from .scans.datasets import DatasetError
    from .studies.evaluation import evaluate_files, format_report

    try:
        result = evaluate_files(args.pred, args.gt, args.json)
    except (DatasetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_report(result))
    if args.json:
        print(f"report written to {args.json}")
    if args.plots:
        from .studies.validation import evaluation_plots

        try:
            written = evaluation_plots(result, args.plots)
        except (RuntimeError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{len(written)} plot(s) written to {args.plots}")
    return 1 if result["overall"]["n_failed"] else 0


def _cmd_dicom_node(args) -> int:
    import signal
    import threading

    from .hospital.node import DicomNode, node_status, parse_destination
    from .clinical.limits import LOOPBACK_HOSTS

    if args.status:
        print(json.dumps(node_status(args.work_dir), indent=2))
        return 0
    try:
        destination = parse_destination(args.send_to) if args.send_to else None
        if not 0 < args.port < 65536:
            raise ValueError(f"--port {args.port}: expected 1-65535")
        if args.host not in LOOPBACK_HOSTS and not (args.allow_calling_ae or args.allow_ip):
            raise ValueError("listening beyond this computer needs --allow-calling-ae or --allow-ip (DICOM has no "
                             "login)")
        from .model.runtime import load_model

        if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_ca and not args.tls_cert):
            raise ValueError("DICOM TLS needs both --tls-cert and --tls-key (and --tls-ca only with them)")
        from .hospital.node import tls_server_context

        tls = tls_server_context(args.tls_cert, args.tls_key, args.tls_ca) if args.tls_cert else None
        model = load_model(args.model, precision=args.precision)
        node = DicomNode(args.work_dir, ae_title=args.ae_title, host=args.host, port=args.port, send_to=destination,
                         allowed_calling_aets=args.allow_calling_ae, max_associations=args.max_associations,
                         max_queue=args.max_queue, model=model, ssl_context=tls, allowed_ips=args.allow_ip,
                         workers=args.workers).start()
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"fetalhead DICOM node {args.ae_title} on {args.host}:{args.port}; results to "
          f"{destination or args.work_dir + '/outbox'}; log {args.work_dir}/node.log (Ctrl-C stops)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    node.stop()
    return 0


def _cmd_validate(args) -> int:
    from .model.runtime import ModelError, load_model
    from .studies.validation import ManualCsvError, validate

    try:
        model = load_model(args.model, precision=args.precision)
        figures = validate(args.scans, args.manual, args.out, model=model, chart=args.chart)
    except (ManualCsvError, ModelError, RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for m, c in figures["measurements"].items():
        loa = (f"limits {c['loa_low_mm']:+.2f} to {c['loa_high_mm']:+.2f} mm" if c.get("loa_low_mm") is not None
               else "limits need 3 scans")
        icc = f"ICC(2,1) {c['icc']:.3f}" if c.get("icc") is not None else "ICC -"
        print(f"{m.upper():<4} n {c['n']:>4}  bias {c['bias_mm']:+.2f} mm  {loa}  {icc}  MAD {c['mad_mm']:.2f} mm")
    print(f"{figures['n_compared']} of {figures['n_scans']} scans compared, {figures['n_failed']} failed; "
          f"report: {args.out} (report.json and agreement.csv beside it)")
    return 1 if figures["n_failed"] else 0


def _row_line(m, reference_hc_mm: float | None) -> str:
    """One printed line per scan: measured HC, and the reference HC beside it when known."""
    name = Path(m.source).name
    if m.status == "failed":
        return f"{name:<24} FAILED   {m.message}"
    if m.head_circumference_mm is not None:
        text = f"HC {m.head_circumference_mm:6.1f} mm"
        if "hc_mm" in m.intervals:
            lo, hi = m.intervals["hc_mm"]
            text += f" (90 % {lo:5.1f}-{hi:5.1f})"
        text += f"  BPD {m.biparietal_diameter_mm:5.1f} mm  OFD {m.occipitofrontal_diameter_mm:5.1f} mm"
        if reference_hc_mm is not None:
            text += f"  | reference HC {reference_hc_mm:6.1f} mm ({m.head_circumference_mm - reference_hc_mm:+.1f})"
    else:
        text = f"HC {m.head_circumference_px:.1f} px (no pixel spacing)"
    if m.n_frames > 1:
        text += f"  [frame {m.frame} of {m.n_frames}" + (", best" if m.hc_trace else "") + "]"
    return f"{name:<24} {m.status:<8} {text}  quality {m.quality:.2f}"


def _check_scale_options(args) -> None:
    """``--scale-points`` and ``--scale-cm`` come together, never with ``--pixel-size``, and read as a
    scale (the points' place in each picture is checked when it is measured). Raises ValueError."""
    from .measurement import two_point_scale

    if args.scale_points is None and args.scale_cm is None:
        return
    if args.scale_points is None or args.scale_cm is None:
        raise ValueError("--scale-points and --scale-cm go together: two points of the picture and their "
                         "distance in cm")
    if args.pixel_size is not None:
        raise ValueError("give either --pixel-size or --scale-points with --scale-cm, not both")
    if args.pixel_size_csv is not None:
        raise ValueError("give the scales per file in the --pixel-size-csv (columns scale_points, "
                         "scale_distance_cm) or --scale-points for every file, not both")
    two_point_scale(args.scale_points, args.scale_cm)  # ScaleError (a LimitError) names what is wrong


def _cmd_measure(args) -> int:
    from tqdm import tqdm

    from .batch import (BatchSummary, MeasureOptions, PixelSizeLookup, RunnerError, collect_scans, open_runner,
                        pending_scans)
    from .scans.datasets import DatasetError
    from .clinical.limits import LimitError, check_ga_by_dates
    from .model.runtime import ModelError, load_model
    from .outputs.results import ResultWriter, check_output_path, write_json

    try:
        check_ga_by_dates(args.ga_weeks, "--ga-weeks")
        spacing = PixelSizeLookup(args.pixel_size, args.pixel_size_csv)
        _check_scale_options(args)
    except (DatasetError, LimitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.out and not args.json:
        args.print_rows = True  # nothing would be kept otherwise: show each result
    if args.resume and not args.out:
        print("error: --resume needs --out (the results to resume)", file=sys.stderr)
        return 2
    files, problems = collect_scans(args.paths)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not files:
        print("error: no scans to measure", file=sys.stderr)
        return 1
    try:
        load_model(args.model, threads=args.threads, precision=args.precision)  # fail early, once
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:  # every output is checked before the first scan is measured
        if args.json:
            check_output_path(args.json, "--json")
        if args.overlay:
            check_output_path(Path(args.overlay) / "probe", "--overlay")
        for option, folder in (("--sr", args.sr), ("--fhir", args.fhir)):
            if folder:
                check_output_path(Path(folder) / "probe", option)
        writer = ResultWriter(args.out, args.format, resume=args.resume)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = BatchSummary()
    frames = args.frames if args.frames is not None else (args.frame or "best")
    todo, summary.skipped, summary.skipped_failed = pending_scans(files, writer.done, frames if isinstance(frames, int)
                                                                  else None, writer.failed_done)
    opts = MeasureOptions.from_lookup(spacing, overlay_dir=args.overlay, ga_weeks=args.ga_weeks, chart=args.chart,
                                      frame=frames if isinstance(frames, int) else 0,
                                      frames=None if isinstance(frames, int) else frames,
                                      accept_anisotropic=args.accept_anisotropic, model_path=args.model,
                                      threads=args.threads or 1, precision=args.precision, sr_dir=args.sr,
                                      fhir_dir=args.fhir, blank_outside_regions=not args.keep_outside_regions,
                                      fhir_bundle_type="transaction" if args.fhir_transaction else "collection",
                                      scale_points=args.scale_points, scale_distance_cm=args.scale_cm)
    try:
        results, closers = open_runner(todo, opts, workers=args.workers, dask_local=args.dask_local or 0,
                                       scheduler=args.scheduler)
    except RunnerError as exc:
        writer.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    collected = []
    try:
        # disable=None: tqdm shows no bar when stderr is not a terminal (logs, pipes)
        for m in tqdm(results, total=len(todo), desc="measuring", unit="scan",
                      disable=True if args.no_progress else None, mininterval=1.0, smoothing=0.1):
            writer.write(m)
            summary.add(m)
            if args.json:
                collected.append(m)
            if args.print_rows:
                tqdm.write(_row_line(m, spacing.reference_hc_mm.get(Path(m.source).name)))
    except KeyboardInterrupt:
        writer.close()
        print(f"interrupted: {summary.total} result(s) kept in {args.out}; run again with --resume to go on",
              file=sys.stderr)
        return 130
    finally:
        for close in closers:
            close()
    writer.close()
    if args.json:
        write_json(args.json, collected)
    print(summary.text(), file=sys.stderr)
    if args.out:
        print(f"results written to {args.out}", file=sys.stderr)
    return 1 if (summary.failed or summary.not_handed_off or problems) else 0


def _cmd_serve(args) -> int:
    from .model.runtime import ModelError

    try:
        from .web.app import create_app
        from .web.serving import LOOPBACK_HOSTS, hash_password, read_password_file, run
    except ImportError as exc:
        print(f"fetalhead serve needs the 'web' extra: pip install 'fetalhead[web]' ({exc})", file=sys.stderr)
        return 1
    if args.add_user:
        if not args.password_file:
            print("error: --add-user needs --password-file", file=sys.stderr)
            return 2
        import getpass

        password = getpass.getpass(f"password for {args.add_user}: ") if sys.stdin.isatty() else sys.stdin.readline()
        password = password.rstrip("\n")
        if len(password) < 10:
            print("error: use a password of at least 10 characters", file=sys.stderr)
            return 2
        with open(args.password_file, "a", encoding="utf-8") as fh:
            fh.write(f"{args.add_user}:{hash_password(password)}\n")
        os.chmod(args.password_file, 0o600)
        print(f"user {args.add_user} added to {args.password_file}", file=sys.stderr)
        return 0
    users = None
    if args.password_file:
        try:
            users = read_password_file(args.password_file)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    loopback = args.host in LOOPBACK_HOSTS
    if not loopback and users is None and not args.insecure_no_login:
        print(f"error: serving on {args.host} lets other computers reach patient scans: give --password-file "
              "(see --add-user), or --insecure-no-login if another layer (a reverse proxy with login) guards it",
              file=sys.stderr)
        return 2
    hosts = list(LOOPBACK_HOSTS) + list(args.allow_host or [])
    if not loopback and args.host not in ("0.0.0.0", "::"):
        hosts.append(args.host)
    from .records.store import default_db_path

    db = Path(args.db) if args.db else default_db_path()
    try:
        app = create_app(args.model, max_upload_bytes=int(args.max_upload_mb * 1_000_000), workers=args.workers,
                         queue=args.queue, allowed_hosts=hosts, users=users, precision=args.precision,
                         db_path=db, efw_method=args.efw_method, patient_id_system=args.patient_id_system)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"fetalhead: open http://{args.host}:{args.port}/ in a browser (Ctrl+C to stop); visits are kept in "
          f"{db} (created on first use)", file=sys.stderr)
    run(app, args.host, args.port)
    return 0


def _cmd_records(args) -> int:
    """``fetalhead records backup|export|delete``: one line per outcome, exit 0 when done, 1 when refused."""
    from .records.store import RecordError, Records, default_db_path

    db = Path(args.db) if args.db else default_db_path()
    if not db.is_file():
        print(f"error: {db}: no record file there", file=sys.stderr)
        return 1
    rec = Records(db)
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "local"
    try:
        if args.records_command == "backup":
            rec.backup(args.out, user=user)
            print(f"backup of {db} written to {args.out}; integrity: {Records(args.out).integrity_check()}",
                  file=sys.stderr)
        elif args.records_command == "export":
            n = rec.export(args.out, user=user)
            print(f"{n} rows (one per measurement; a visit without one: one row) written to {args.out}",
                  file=sys.stderr)
        else:
            removed = rec.delete_patient(args.patient_id, user=user)
            print(f"erased the patient: {removed['patients']} patient row, {removed['visits']} visits, "
                  f"{removed['measurements']} measurements, {removed['pictures']} pictures; "
                  f"{removed['audit_rows_pseudonymised']} audit rows now name {removed['token']} instead",
                  file=sys.stderr)
    except RecordError as exc:
        print(f"error: {db}: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:
        print(f"error: {db}: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_report(args) -> int:
    from .scans.imageio import ScanReadError
    from .clinical.limits import LimitError, check_ga_by_dates, check_pixel_spacing
    from .measurement import load_scan, measure_scan
    from .model.runtime import ModelError, load_model
    from .outputs.report import report_html, report_pdf
    from .outputs.results import check_output_path

    try:
        check_pixel_spacing(args.pixel_size, "--pixel-size")
        check_ga_by_dates(args.ga_weeks, "--ga-weeks")
        check_output_path(args.out, "report")
    except (LimitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model, precision=args.precision)
        scan = load_scan(args.scan, str(args.scan), args.frame)
    except (ScanReadError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    m = measure_scan(scan, args.pixel_size, ga_weeks=args.ga_weeks, model=model, spacing_source="command line",
                     chart=args.chart)
    fmt = args.format or ("html" if str(args.out).lower().endswith((".html", ".htm")) else "pdf")
    try:
        data = report_pdf(m, scan.image, args.lang) if fmt == "pdf" else report_html(m, scan.image, args.lang).encode()
        Path(args.out).write_bytes(data)
    except (RuntimeError, OSError) as exc:
        print(f"error: {args.out}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    print(f"{m.status}: report written to {args.out}" + (f" ({m.message})" if m.message else ""), file=sys.stderr)
    return 1 if m.status == "failed" else 0


def _read_screen_picture(path: str):
    """The screen picture of ``path`` in colour when it is an image file (the marks' colour helps), else the
    grey image the one way in reads (a DICOM file, nothing blanked outside its regions: the scale lies there)."""
    import cv2
    import numpy as np

    from .measurement import load_scan

    scan = load_scan(path, path, blank_outside_regions=False)
    if scan.kind in ("png", "jpeg", "bmp", "tiff"):
        img = cv2.imdecode(np.frombuffer(Path(path).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        if img is not None and img.shape[:2] == scan.image.shape:
            return img
    return scan.image


def _cmd_scale(args) -> int:
    import cv2

    from .scans.imageio import ScanReadError
    from .scans.screen_photo import read_picture_scale
    from .outputs.overlay import draw_scale_overlay
    from .outputs.results import check_output_path

    try:
        if args.json:
            check_output_path(args.json, "JSON")
        if args.overlay:
            Path(args.overlay).mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows, failed = [], 0
    for f in args.files:
        try:
            img = _read_screen_picture(f)
        except (ScanReadError, OSError) as exc:
            print(f"{f}: failed: {exc}")
            rows.append({"file": f, "mm_per_px": None, "marks": [], "label": None, "confidence": 0.0,
                         "reason": str(exc)})
            failed += 1
            continue
        # OpenCV reads BGR; the reader wants RGB (only the colours' differences matter, but be exact)
        rgb = img[..., ::-1] if img.ndim == 3 else img
        s = read_picture_scale(rgb)  # a photo of the screen at an angle refused, as when measuring
        d = {"file": f, **s.to_dict()}
        rows.append(d)
        if s.mm_per_px is None:
            failed += 1
            print(f"{f}: {s.reason}")
        else:
            print(f"{f}: {s.mm_per_px[0]:.5f} x {s.mm_per_px[1]:.5f} mm/px (1 cm = {10 / s.mm_per_px[1]:.1f} px), "
                  f"{len(s.marks)} marks, label {s.label or '-'}, confidence {s.confidence:.2f}: {s.reason}")
        if args.overlay:
            out = Path(args.overlay) / f"{Path(f).stem}_scale.png"
            cv2.imwrite(str(out), draw_scale_overlay(img, s))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = argparse.ArgumentParser(prog="fetalhead", description="Fetal head biometry on 2D ultrasound.")
    p.add_argument("--version", action="version", version=f"fetalhead {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the head segmentation network (needs the 'train' extra)")
    t.add_argument("--data", required=True, help="data set folder or landmark CSV (any layout fetalhead reads)")
    t.add_argument("--out", required=True, help="run folder: checkpoints, history.json, train_config.json")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--steps-per-epoch", type=int, default=250)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch")
    t.add_argument("--max-train-images", type=int, default=0, help="use only the first N (smoke tests)")
    t.add_argument("--max-val-images", type=int, default=0)
    t.add_argument("--folds", type=int, default=0, metavar="K",
                   help="subject-grouped K-fold cross-validation: train on all folds but --fold (default: the "
                        "fixed 80/20 split)")
    t.add_argument("--fold", type=int, default=0, help="the held-out fold, 0 .. K-1 (with --folds)")
    t.add_argument("--stem-stride", type=int, default=2, choices=(1, 2),
                   help="2: the strided stem of model 0.3.0 (a quarter of the work); 1: full resolution")
    t.add_argument("--scan-defect-rate", type=float, default=1.0, metavar="R",
                   help="how often scan defects (shadows, missing arcs, reverberation, sector cuts) are drawn, "
                        "as a multiple of model 0.3.0's rates; 0: none")
    t.add_argument("--init", metavar="WEIGHTS",
                   help="start from these weights (a run's last.pt, or a weights file of export --weights): "
                        "a fine-tuning phase")
    t.add_argument("--ema-decay", type=float, default=0.0, metavar="D",
                   help="also keep an exponential moving average of the weights (decay D per step, e.g. 0.999), "
                        "saved as ema.pt beside last.pt; 0: none")
    t.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help="bfloat16 autocast (auto: where the CPU computes bfloat16 natively; elsewhere it is about "
                        "8 x slower)")
    t.add_argument("--val-every", type=int, default=1, metavar="N",
                   help="validate every N epochs and after the last (default 1)")
    t.add_argument("--export", metavar="ONNX", help="export the final weights to this ONNX file with metadata")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_cmd_train)

    x = sub.add_parser("export", help="export a training checkpoint to ONNX with its metadata")
    x.add_argument("checkpoint", help="last.pt of a training run")
    x.add_argument("out", help="ONNX file to write (its metadata goes beside it as .json)")
    x.add_argument("--train-command", help="the command that trained the checkpoint (default: as recorded in it)")
    x.add_argument("--weights", metavar="PT", help="also write the weights alone (torch) to this file")
    x.set_defaults(func=_cmd_export)

    q = sub.add_parser("quantize", help="an INT8 copy of the model (ONNX Runtime static quantization)")
    q.add_argument("--data", required=True, help="labelled data set (its training split gives the calibration views)")
    q.add_argument("--model", help="float ONNX model (default: the shipped one)")
    q.add_argument("--out", help="INT8 file (default: <model>_int8.onnx beside it)")
    q.add_argument("--images", type=int, default=120, help="training images for calibration (3 views each)")
    q.set_defaults(func=_cmd_quantize)

    k = sub.add_parser("calibrate", help="fit the model's 90 %% intervals and review flag on the validation split")
    k.add_argument("--data", required=True, help="labelled data set (the validation split of it is used)")
    k.add_argument("--model", help="ONNX model (default: the shipped one); its metadata JSON gets the calibration")
    k.add_argument("--out", metavar="JSON", help="write the metadata here instead of beside the model")
    k.add_argument("--threads", type=int, default=2)
    k.add_argument("--fold-models", nargs="+", metavar="ONNX",
                   help="out of fold: the recipe's fold models in fold order (fold k's model trained without fold k "
                        "of the fixed subject-grouped split); every labelled image is measured by the one that never "
                        "saw its subject, instead of the validation split by the model itself")
    k.add_argument("--refine-passes", type=int, choices=(1, 2, 3), default=0, metavar="N",
                   help="measure (and ship) with N fine passes (default: the model's own setting)")
    k.add_argument("--records-cache", metavar="FILE",
                   help="keep the measured records in FILE and reuse them when it holds the same models, settings, "
                        "images and variations (to calibrate the float and the INT8 model on one measuring run)")
    k.add_argument("--limit", type=int, default=0, help="only the first N validation images (smoke tests)")
    k.add_argument("--no-progress", action="store_true")
    k.set_defaults(func=_cmd_calibrate)

    c = sub.add_parser("check-data", help="validate a data set (images, annotations, pixel sizes, split)")
    c.add_argument("path", help="data set folder (shared or official HC18 layout) or landmark CSV")
    c.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    c.add_argument("--hc-tolerance-mm", type=float, default=1.0,
                   help="largest accepted |HC(annotation) - reference HC| (mm)")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_cmd_check_data)

    e = sub.add_parser("evaluate", help="compare a results CSV with reference ellipses (HC18 metrics)")
    e.add_argument("pred", help="results CSV (the columns of ellipses.csv)")
    e.add_argument("gt", help="ellipses.csv, a shared-layout folder or an official HC18 folder")
    e.add_argument("--json", metavar="FILE", help="write all figures, per band and per image, as JSON")
    e.add_argument("--plots", metavar="DIR", help="also draw Bland-Altman plots of HC, BPD and OFD here (PNG; "
                                                  "needs the validate extra)")
    e.set_defaults(func=_cmd_evaluate)

    n = sub.add_parser("dicom-node", help="a DICOM node: receive ultrasound images (C-STORE), measure them, send "
                                          "the SR and overlay on (dicom extra)")
    n.add_argument("--port", type=int, default=11112)
    n.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only; "
                                                        "0.0.0.0 for the network, with --allow-calling-ae "
                                                        "or --allow-ip)")
    n.add_argument("--ae-title", default="FETALHEAD")
    n.add_argument("--send-to", metavar="AET@HOST:PORT", help="where the SR and overlay go (a PACS); without it "
                                                             "they stay in the work folder")
    n.add_argument("--work-dir", default="fetalhead-node", help="journal, results and log (default ./fetalhead-node)")
    n.add_argument("--allow-calling-ae", action="append", default=[], metavar="AET",
                   help="accept stores only from these calling AE titles (repeat the option)")
    n.add_argument("--allow-ip", action="append", default=[], metavar="CIDR",
                   help="accept connections only from these addresses or networks, e.g. 10.1.2.0/24 (repeat the "
                        "option; others are closed and logged)")
    n.add_argument("--workers", type=int, default=2, help="measuring threads, so that one long cine loop does "
                                                          "not hold up the images behind it (default 2)")
    n.add_argument("--max-associations", type=int, default=16, help="associations at once (default 16)")
    n.add_argument("--max-queue", type=int, default=1000, help="instances waiting to be measured before stores "
                                                              "are refused (out of resources)")
    n.add_argument("--tls-cert", metavar="PEM", help="DICOM TLS: the node's certificate (chain), PEM")
    n.add_argument("--tls-key", metavar="PEM", help="DICOM TLS: the node's private key, PEM")
    n.add_argument("--tls-ca", metavar="PEM", help="DICOM TLS: require client certificates signed by this CA")
    n.add_argument("--status", action="store_true", help="print the queue of --work-dir and exit")
    n.add_argument("--model", help="ONNX model (default: the one shipped in the package)")
    n.add_argument("--precision", choices=("fp32", "int8"), default=None)
    n.set_defaults(func=_cmd_dicom_node)

    v = sub.add_parser("validate", help="agreement with a hospital's own manual measurements: Bland-Altman, "
                                        "ICC, per trimester; HTML or PDF report (needs the validate extra)")
    v.add_argument("scans", nargs="+", help="scan files or folders")
    v.add_argument("--manual", required=True, metavar="CSV",
                   help="filename, hc_mm/bpd_mm/ofd_mm, optional *_mm_2 (second observer), ga_weeks, pixel_size_mm")
    v.add_argument("--out", required=True, metavar="REPORT", help="report.html or report.pdf (report.json and "
                                                                  "agreement.csv are written beside it)")
    v.add_argument("--chart", choices=CHARTS, default=DEFAULT_CHART, help="growth chart of the centiles")
    v.add_argument("--model", help="ONNX model (default: the one shipped in the package)")
    v.add_argument("--precision", choices=("fp32", "int8"), default=None)
    v.set_defaults(func=_cmd_validate)

    m = sub.add_parser("measure", help="measure the fetal head on scans (files or folders)")
    m.add_argument("paths", nargs="+", help="scan files or folders (*_Annotation.png are skipped)")
    g = m.add_mutually_exclusive_group()
    g.add_argument("--pixel-size", type=float, metavar="MM", help="pixel size in mm for every scan")
    g.add_argument("--pixel-size-csv", metavar="CSV",
                   help="per-file pixel sizes: HC18 CSV (filename, pixel size(mm)) or pixel_size_mm column; "
                        "or, where nobody knows it, scale_points (x1,y1,x2,y2) and scale_distance_cm columns")
    m.add_argument("--scale-points", metavar="X1,Y1,X2,Y2",
                   help="set the scale by hand: two points of the picture (pixels, x to the right, y down), "
                        "e.g. two marks of the screen's depth scale, for the scans without a pixel size; "
                        "with --scale-cm")
    m.add_argument("--scale-cm", type=float, metavar="CM", help="the distance between the --scale-points (cm)")
    m.add_argument("--out", metavar="CSV|PARQUET",
                   help="results, one row per scan, written as each finishes (.parquet: needs pyarrow)")
    m.add_argument("--overlay", metavar="DIR", help="write an overlay picture per scan here")
    m.add_argument("--sr", metavar="DIR", help="write a DICOM SR (TID 5000) and an overlay secondary capture per "
                                               "measured ultrasound DICOM here (dicom extra)")
    m.add_argument("--fhir", metavar="DIR", help="write a FHIR R4 Bundle (LOINC/UCUM Observations) per measured "
                                                 "scan here")
    m.add_argument("--fhir-transaction", action="store_true",
                   help="write the FHIR Bundles as transactions (each entry with its POST request) instead of "
                        "collections, to POST to a FHIR server")
    m.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    m.add_argument("--format", choices=("fetalhead", "hc18"), default="fetalhead",
                   help="CSV columns: all (fetalhead) or the HC18 challenge submission")
    m.add_argument("--ga-weeks", type=_gestational_age, metavar="W+D|WEEKS",
                   help="gestational age by dates (20+3, or weeks as a number), for the centiles")
    m.add_argument("--chart", choices=CHARTS, default=DEFAULT_CHART,
                   help="growth chart of the centiles: INTERGROWTH-21st (default) or the WHO fetal growth charts")
    m.add_argument("--model", help="ONNX model (default: the one shipped in the package)")
    m.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default 1)")
    m.add_argument("--precision", choices=("fp32", "int8"), default=None,
                   help="the float model or its INT8 copy (default: fetalhead.model.runtime.DEFAULT_PRECISION)")
    m.add_argument("--print-rows", action="store_true", help="print one line per scan")
    m.add_argument("--frames", type=_frames, default=None, metavar="best|all|N",
                   help="cine loops (multi-frame DICOM, MP4/AVI video): the best frame with the HC trace "
                        "(default), every frame (a row each), or frame N (0 = the first)")
    m.add_argument("--frame", type=int, default=0, help="the same as --frames N")
    m.add_argument("--keep-outside-regions", action="store_true",
                   help="DICOM: keep the pixels outside the ultrasound regions (by default they are blanked: "
                        "scanners burn the patient's name and ID there)")
    m.add_argument("--accept-anisotropic", action="store_true",
                   help="measure DICOM files whose x and y pixel spacing differ by more than 1%%")
    m.add_argument("--resume", action="store_true",
                   help="keep --out and skip the scans already in it (matched by file content hash)")
    m.add_argument("--workers", type=int, default=1, help="local worker processes (1 thread each)")
    d = m.add_mutually_exclusive_group()
    d.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on an existing Dask cluster")
    d.add_argument("--dask-local", type=int, metavar="N", help="start a Dask LocalCluster of N worker processes")
    m.add_argument("--no-progress", action="store_true")
    m.set_defaults(func=_cmd_measure)

    sv = sub.add_parser("serve", help="the web app and REST API (needs the 'web' extra)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this computer only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--model", help="ONNX model (default: the one shipped in the package)")
    sv.add_argument("--max-upload-mb", type=float, default=64.0)
    sv.add_argument("--precision", choices=("fp32", "int8"), default=None)
    sv.add_argument("--workers", type=int, default=2, help="scans measured at once (default 2: one per core)")
    sv.add_argument("--queue", type=int, default=16, help="scans that may wait for a worker (beyond: 503)")
    sv.add_argument("--allow-host", action="append", metavar="NAME",
                    help="a Host name the server answers for besides loopback (the name clients use)")
    sv.add_argument("--password-file", metavar="FILE", help="require a login (HTTP Basic; scrypt hashes)")
    sv.add_argument("--add-user", metavar="USER", help="add USER to --password-file (password from the terminal)")
    sv.add_argument("--insecure-no-login", action="store_true",
                    help="allow a non-loopback --host without a login (only behind a proxy that has one)")
    sv.add_argument("--db", metavar="FILE", help="the visit record (SQLite; default: records.sqlite in the user's "
                                                 "data folder, e.g. ~/.local/share/fetalhead/, created on first use)")
    sv.add_argument("--efw-method", choices=("hadlock1985", "intergrowth2017"), default="hadlock1985",
                    help="the estimated fetal weight shown first (both are given and named)")
    sv.add_argument("--patient-id-system", metavar="URI",
                    help="the FHIR identifier system of the clinic's patient IDs, for the subject of a visit's "
                         "FHIR Bundle (default urn:fetalhead:patient-id)")
    sv.set_defaults(func=_cmd_serve)

    rc = sub.add_parser("records", help="the visit record: backup, export, erase a patient")
    rsub = rc.add_subparsers(dest="records_command", required=True)
    rb = rsub.add_parser("backup", help="a consistent copy of the record (SQLite online backup)")
    rb.add_argument("--out", required=True, metavar="COPY", help="the new file (never overwritten)")
    rx = rsub.add_parser("export", help="every visit and measurement as CSV or JSON (for audits and research)")
    rx.add_argument("--out", required=True, metavar="FILE", help="x.csv or x.json")
    rd = rsub.add_parser("delete", help="erase a patient: rows and stored pictures (says what it removed)")
    rd.add_argument("--patient-id", required=True, metavar="ID")
    for q in (rb, rx, rd):
        q.add_argument("--db", metavar="FILE", help="the record (default: records.sqlite in the user's data folder)")
    rc.set_defaults(func=_cmd_records)

    sc = sub.add_parser("scale", help="read the scanner's depth scale off screen pictures: mm per pixel, or why none")
    sc.add_argument("files", nargs="+", metavar="FILE", help="screenshots, stills, captures, DICOM files")
    sc.add_argument("--json", metavar="OUT", help="write a list of objects: file, mm_per_px ([x, y] or null), marks, "
                    "label, confidence, reason")
    sc.add_argument("--overlay", metavar="DIR", help="write each picture with the marks found circled")
    sc.set_defaults(func=_cmd_scale)

    r = sub.add_parser("report", help="a printable report (PDF or HTML) of one scan")
    r.add_argument("scan", help="PNG/JPEG/DICOM scan")
    r.add_argument("--out", required=True, help="report file (.pdf or .html)")
    r.add_argument("--format", choices=("pdf", "html"), help="default: from the --out suffix, else pdf")
    r.add_argument("--precision", choices=("fp32", "int8"), default=None)
    r.add_argument("--pixel-size", type=float, metavar="MM")
    r.add_argument("--ga-weeks", type=_gestational_age, metavar="W+D|WEEKS",
                   help="gestational age by dates (20+3, or weeks as a number), for the centile chart")
    r.add_argument("--chart", choices=CHARTS, default=DEFAULT_CHART,
                   help="growth chart: INTERGROWTH-21st (default) or the WHO fetal growth charts")
    r.add_argument("--lang", choices=("en", "hi", "te"), default="en")
    r.add_argument("--frame", type=int, default=0)
    r.add_argument("--model")
    r.set_defaults(func=_cmd_report)
    return p


def _joined_negative_values(argv: list[str]) -> list[str]:
    """``--scale-points -10,5,300,5`` as ``--scale-points=-10,5,300,5``: argparse takes a value that starts
    with "-" and is not one number for an option, and its error ("expected one argument") hides the point
    outside the picture that the library would name."""
    out, i = [], 0
    while i < len(argv):
        value = argv[i + 1] if argv[i] in ("--scale-points", "--scale-cm") and i + 1 < len(argv) else ""
        if value[:1] == "-" and (value[1:2].isdigit() or value[1:2] == "."):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parser.parse_args(_joined_negative_values(argv))
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
