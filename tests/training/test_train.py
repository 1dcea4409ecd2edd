"""The training path (PyTorch): a few steps, checkpoint and resume, export, torch-vs-ONNX parity."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fetalhead.cli import main  # noqa: E402
from fetalhead.scans.datasets import load_dataset  # noqa: E402
from fetalhead.clinical.geometry import Ellipse  # noqa: E402
from fetalhead.scans.imageio import read_scan  # noqa: E402
from fetalhead.model.runtime import HeadModel, default_model_path  # noqa: E402
from fetalhead.model.pipeline import segment_head  # noqa: E402
from fetalhead.training.export import export_onnx, load_checkpoint_model  # noqa: E402
from fetalhead.training.train import sample_view  # noqa: E402
from fetalhead.model.transforms import standardize  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_WEIGHTS = ROOT / "training-artifacts" / "fetalhead_unet.pt"


def test_sample_view_target_matches_the_moved_ellipse():
    e = Ellipse(300, 200, 100, 80, 30)
    from fetalhead.clinical.geometry import ellipse_coverage, fit_ellipse_to_mask

    image = ellipse_coverage(e, (400, 600))
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(40):
        view, target, m = sample_view(image, e, rng, 96)
        if target.sum() < 50 or view.sum() < 50 or target[0].max() > 0 or target[-1].max() > 0:
            continue
        if target[:, 0].max() > 0 or target[:, -1].max() > 0:
            continue
        fv, ft = fit_ellipse_to_mask(view), fit_ellipse_to_mask(target)
        assert fv.center_x == pytest.approx(ft.center_x, abs=0.5)
        assert fv.semi_major == pytest.approx(ft.semi_major, abs=0.7)
        checked += 1
    assert checked >= 10  # the test must have compared real draws


def test_random_crops_and_blank_views_teach_no_head():
    from fetalhead.training.train import blank_view

    e = Ellipse(300, 200, 60, 50, 0)
    image = np.zeros((400, 600), np.float32)
    rng = np.random.default_rng(1)
    empty = 0
    for _ in range(30):
        _, target, _ = sample_view(image, e, rng, 64, whole_view_prob=0.0, random_crop_prob=1.0)
        empty += int(target.max() == 0)
    assert empty >= 5  # crops away from the head have an all-background target
    for _ in range(6):
        v = blank_view(rng, 64)
        assert v.shape == (64, 64) and v.min() >= 0 and v.max() <= 1


def test_probe_direction_follows_the_view():
    from fetalhead.training.train import probe_direction
    from fetalhead.model.transforms import view_affine

    assert probe_direction(view_affine((100, 100), 200, 160, 0)) == pytest.approx([0, 1])
    d = probe_direction(view_affine((100, 100), 200, 160, 90))  # content turned by -90 degrees
    assert abs(d[0]) == pytest.approx(1, abs=1e-9) and abs(d[1]) < 1e-9


class Interrupt(Exception):
    pass


def test_train_interrupt_resume_and_export(hc18, tmp_path, capsys):
    from fetalhead.training.train import TrainConfig, train

    out = tmp_path / "run"
    common = dict(data=str(hc18), out=str(out), epochs=2, steps_per_epoch=2, batch_size=2, max_train_images=6,
                  max_val_images=2)

    def stop_after_first_epoch(msg):
        if '"epoch": 1' in msg:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(TrainConfig(**common), progress=False, log=stop_after_first_epoch)
    ck = torch.load(out / "last.pt", weights_only=False)
    assert ck["epoch"] == 1 and len(ck["history"]) == 1 and "val_n" in ck["history"][0]
    # the same command resumes after epoch 1 and exports
    onnx = tmp_path / "m.onnx"
    args = ["train", "--data", str(hc18), "--out", str(out), "--epochs", "2", "--steps-per-epoch", "2",
            "--batch-size", "2", "--max-train-images", "6", "--max-val-images", "2", "--no-progress",
            "--export", str(onnx)]
    assert main(args) == 0
    assert "resumed" in capsys.readouterr().out
    ck = torch.load(out / "last.pt", weights_only=False)
    assert ck["epoch"] == 2 and [h["epoch"] for h in ck["history"]] == [1, 2]
    model = HeadModel(onnx)
    assert model.metadata["training"]["epochs"] == 2
    assert model.metadata["training"]["command"].startswith("fetalhead train --data")
    # torch and ONNX agree on the exported (barely trained) network
    torch_model, _ = load_checkpoint_model(out / "last.pt")
    x = np.random.default_rng(0).standard_normal((2, 1, 160, 160)).astype(np.float32)
    with torch.no_grad():
        ref = torch_model(torch.from_numpy(x)).numpy()
    assert np.abs(model.predict(x) - ref).max() < 1e-3
    # other settings are refused rather than silently mixed
    with pytest.raises(ValueError, match="cannot resume"):
        train(TrainConfig(**dict(common, epochs=3)), progress=False, log=lambda *a: None)


def test_training_is_reproducible(hc18, tmp_path):
    from fetalhead.training.train import TrainConfig, train

    outs = []
    for k in range(2):
        cfg = TrainConfig(data=str(hc18), out=str(tmp_path / f"r{k}"), epochs=1, steps_per_epoch=2, batch_size=2,
                          max_train_images=4, max_val_images=1, threads=1)
        train(cfg, progress=False, log=lambda *a: None)
        outs.append(torch.load(tmp_path / f"r{k}" / "last.pt", weights_only=False)["model"])
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key]), key


@pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="shipped torch weights not in this checkout")
def test_shipped_onnx_matches_shipped_torch_weights(samples_dir):
    torch_model, _ = load_checkpoint_model(SHIPPED_WEIGHTS)
    onnx_model = HeadModel(default_model_path("fp32"))
    for name in ("358_HC.png", "785_HC.png", "011_HC.png"):
        img = read_scan(samples_dir / name)
        view = standardize(__import__("cv2").resize(img, (160, 160)))[None, None].astype(np.float32)
        with torch.no_grad():
            ref = torch_model(torch.from_numpy(view)).numpy()
        assert np.abs(onnx_model.predict(view) - ref).max() < 1e-3

        def torch_predict(batch):
            with torch.no_grad():
                return torch_model(torch.from_numpy(batch)).numpy()

        e_torch = segment_head(img, torch_predict, onnx_model.pipeline_config).ellipse
        e_onnx = segment_head(img, onnx_model.predict, onnx_model.pipeline_config).ellipse
        assert e_onnx.perimeter_px == pytest.approx(e_torch.perimeter_px, rel=1e-4)
        assert e_onnx.center_x == pytest.approx(e_torch.center_x, abs=0.01)


def test_dataset_for_training_has_all_labels(hc18):
    assert all(s.ellipse is not None for s in load_dataset(hc18))


def test_unet_with_a_strided_stem_keeps_the_view_size_and_works_at_half_resolution():
    from fetalhead.training.unet import UNet

    seen = []

    def record(module, inputs, output):
        seen.append(tuple(output.shape[-2:]))

    full, half = UNet(), UNet(stem_stride=2)
    x = torch.zeros(2, 1, 160, 96)
    for net in (full, half):
        seen.clear()
        handles = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        with torch.no_grad():
            assert net.eval()(x).shape == (2, 1, 160, 96)
        for h in handles:
            h.remove()
        largest = max(seen)
        assert largest == ((160, 96) if net is full else (80, 48))
    with pytest.raises(ValueError, match="stem_stride"):
        UNet(stem_stride=4)


def test_a_cross_validation_run_trains_without_its_fold_and_records_the_recipe(hc18, tmp_path):
    import json

    from fetalhead.scans.datasets import fold_split, load_dataset

    out = tmp_path / "fold1"
    args = ["train", "--data", str(hc18), "--out", str(out), "--epochs", "1", "--steps-per-epoch", "1",
            "--batch-size", "2", "--max-train-images", "4", "--max-val-images", "2", "--no-progress",
            "--folds", "3", "--fold", "1", "--stem-stride", "1", "--scan-defect-rate", "0.5"]
    assert main(args) == 0
    cfg = json.loads((out / "train_config.json").read_text())
    assert (cfg["n_folds"], cfg["fold"], cfg["stem_stride"], cfg["scan_defect_rate"]) == (3, 1, 1, 0.5)
    ck = torch.load(out / "last.pt", weights_only=False)
    held = {s.filename for s in fold_split(load_dataset(hc18), 3, 1)[1]}
    assert ck["history"][-1]["val_n"] == 2 and len(held) > 200  # validated on held-out images only
    # the same folder with another recipe is refused in one line, not resumed into a mix
    assert main(args[:-2] + ["--scan-defect-rate", "0.7"]) == 2
    assert main(["train", "--data", str(hc18), "--out", str(tmp_path / "x"), "--folds", "3", "--fold", "3"]) == 2


def test_a_fine_tuning_phase_starts_from_given_weights_and_keeps_their_average(hc18, tmp_path):
    """--init starts from a run's weights (not a random start); --ema-decay writes the moving average
    of the weights beside them, which export reads like any checkpoint."""
    from fetalhead.training.unet import UNet

    base = UNet((16, 32, 48, 64, 96), 2)
    torch.manual_seed(3)
    for p in base.parameters():
        p.data.normal_(0, 0.05)
    weights = tmp_path / "base.pt"
    torch.save({"model": base.state_dict()}, weights)
    out = tmp_path / "ft"
    args = ["train", "--data", str(hc18), "--out", str(out), "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "2", "--max-train-images", "4", "--max-val-images", "1", "--no-progress", "--lr", "1e-9",
            "--init", str(weights), "--ema-decay", "0.5"]
    assert main(args) == 0
    ck = torch.load(out / "last.pt", weights_only=False)
    key = "down.0.0.weight"
    # a learning rate of 1e-9 leaves the given weights where they were: the run started from them
    assert torch.allclose(ck["model"][key], base.state_dict()[key], atol=1e-5)
    ema = torch.load(out / "ema.pt", weights_only=False)
    assert set(ema["model"]) == set(ck["model"]) and ck["config"]["ema_decay"] == 0.5
    assert torch.allclose(ema["model"][key], base.state_dict()[key], atol=1e-5)
    assert ema["model"]["down.0.1.num_batches_tracked"].dtype == torch.int64
    assert main(["export", str(out / "ema.pt"), str(tmp_path / "ema.onnx")]) == 0
    # weights of another network are refused in one line
    torch.save({"model": UNet((8, 16), 1).state_dict()}, tmp_path / "other.pt")
    other = [str(tmp_path / "other.pt") if a == str(weights) else str(tmp_path / "ft2") if a == str(out) else a
             for a in args]
    assert main(other) == 2
