"""The vLLM command line built from every engineConfig key and gpuCount."""

from __future__ import annotations

from pathlib import Path

import pytest

from tide.backends.ray.actor import gpu_id
from tide.engines.vllm import VllmEngine, VllmNotAvailable, vllm_arguments


def test_every_engine_config_key_becomes_its_flag() -> None:
    args = vllm_arguments(
        model_dir=Path("/cache/m"),
        host="10.0.0.5",
        port=9000,
        served_name="llama-chat",
        engine_config={
            "max-model-len": "8192",
            "reasoning-parser": "deepseek_r1",
            "enable-auto-tool-choice": "",
            "tool-call-parser": "hermes",
            "max-num-batched-tokens": "4096",
            "structured-outputs-config.backend": "xgrammar",
        },
        gpu_count=4,
        cpu=False,
    )
    joined = " ".join(args)
    assert "--model /cache/m --served-model-name llama-chat --host 10.0.0.5 --port 9000" in joined
    assert "--tensor-parallel-size 4" in joined
    assert "--max-model-len 8192" in joined
    assert "--reasoning-parser deepseek_r1" in joined
    assert "--tool-call-parser hermes" in joined
    assert "--max-num-batched-tokens 4096" in joined
    assert "--structured-outputs-config.backend xgrammar" in joined
    assert "--enable-prompt-tokens-details" in args  # responses report cached prompt tokens to the gateway
    flag = args.index("--enable-auto-tool-choice")
    assert flag == len(args) - 1 or args[flag + 1].startswith("--")  # a bare flag


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="gpu-memory-utilization"):
        vllm_arguments(
            model_dir=Path("/m"),
            host="h",
            port=1,
            served_name="n",
            engine_config={"gpu-memory-utilization": "0.9"},
            gpu_count=1,
            cpu=False,
        )


def test_gpus_assigned_by_the_scheduler_are_visible_to_the_engine(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("")
    plan = VllmEngine(python=str(python)).plan(
        model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=(2, 3)
    )
    assert plan.env["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert "--tensor-parallel-size" in plan.argv and plan.argv[plan.argv.index("--tensor-parallel-size") + 1] == "2"
    assert plan.argv[1:3] == ("-m", "vllm.entrypoints.openai.api_server")


def test_mig_slices_ray_names_by_uuid_reach_the_engine_as_uuids(tmp_path: Path) -> None:
    """On a node whose CUDA_VISIBLE_DEVICES lists MIG UUIDs, Ray hands out UUIDs, not indexes."""
    python = tmp_path / "python"
    python.write_text("")
    assigned = tuple(
        gpu_id(i) for i in ["MIG-4f1c0d6e-aaaa-bbbb-cccc-0123456789ab", "MIG-9e2d1f00-dddd-eeee-ffff-0123456789ab"]
    )
    plan = VllmEngine(python=str(python)).plan(
        model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=assigned
    )
    assert plan.env["CUDA_VISIBLE_DEVICES"] == ",".join(str(a) for a in assigned)
    assert plan.argv[plan.argv.index("--tensor-parallel-size") + 1] == "2"
    assert [gpu_id(0), gpu_id("3"), gpu_id(" GPU-1 ")] == [0, 3, "GPU-1"]


def test_cpu_mode_runs_eager_without_tensor_parallelism(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("")
    plan = VllmEngine(python=str(python)).plan(
        model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=()
    )
    assert "--enforce-eager" in plan.argv and "--tensor-parallel-size" not in plan.argv
    assert plan.env["VLLM_CPU_KVCACHE_SPACE"]


def test_missing_vllm_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDE_VLLM_PYTHON", raising=False)
    with pytest.raises(VllmNotAvailable, match=r"TIDE_VLLM_PYTHON.*setup-vllm\.sh"):
        VllmEngine().plan(model_dir=Path("/m"), host="h", port=1, served_name="n", engine_config={}, gpu_ids=())


def test_replicas_stay_offline_and_quiet(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("")
    plan = VllmEngine(python=str(python)).plan(
        model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=()
    )
    assert plan.env["HF_HUB_OFFLINE"] == "1" and plan.env["VLLM_NO_USAGE_STATS"] == "1"
    assert "--disable-uvicorn-access-log" in plan.argv  # scrapes and proxied requests would fill the log
    assert not plan.emits_events and plan.health_path == "/health"


def test_the_operator_sizes_the_cpu_kv_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = tmp_path / "python"
    python.write_text("")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "8")
    plan = VllmEngine(python=str(python)).plan(
        model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=()
    )
    assert plan.env["VLLM_CPU_KVCACHE_SPACE"] == "8"
    gpu = VllmEngine(python=str(python)).plan(
        model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=(0,)
    )
    assert "VLLM_CPU_KVCACHE_SPACE" not in gpu.env


def test_on_gpus_vllm_runs_with_sleep_mode_so_a_replica_can_park(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("")
    plan = VllmEngine(python=str(python)).plan(
        model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=(0,)
    )
    assert "--enable-sleep-mode" in plan.argv
    assert plan.env["VLLM_SERVER_DEV_MODE"] == "1"  # /sleep and /wake_up exist only in development mode
    assert plan.can_park and (plan.park_path, plan.wake_path) == ("/sleep", "/wake_up")


def test_on_cpu_vllm_cannot_park_and_gets_no_development_mode(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("")
    plan = VllmEngine(python=str(python)).plan(
        model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=()
    )
    assert not plan.can_park
    assert "--enable-sleep-mode" not in plan.argv and "VLLM_SERVER_DEV_MODE" not in plan.env


def test_on_cpu_vllm_runs_nicer_than_tide_so_the_platform_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = tmp_path / "python"
    python.write_text("")
    engine = VllmEngine(python=str(python))

    def niceness(gpu_ids: tuple[int, ...]) -> int:
        return engine.plan(
            model_dir=Path("/m"), host="127.0.0.1", port=8000, served_name="m", engine_config={}, gpu_ids=gpu_ids
        ).niceness

    monkeypatch.delenv("TIDE_VLLM_CPU_NICE", raising=False)
    assert niceness(()) == 10
    assert niceness((0,)) == 0  # a GPU engine computes on its GPU: no reason to yield the cores
    monkeypatch.setenv("TIDE_VLLM_CPU_NICE", "0")
    assert niceness(()) == 0
    monkeypatch.setenv("TIDE_VLLM_CPU_NICE", "5")
    assert niceness(()) == 5
