"""Demo data for ``gpuyard serve --demo``: a user, the seed document's example templates, and a
small fleet of simulated machines (demo_fleet.yaml) so that searches find offers."""

from __future__ import annotations

from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpuyard.services.accounts.users import add_key, create_user
from gpuyard.services.catalog.templates import create_template, set_recommended
from gpuyard.services.market.fleet import FleetResult, load_fleet, parse_yaml
from gpuyard.store.models import User
from gpuyard.wire.base import parse
from gpuyard.wire.templates import TemplateCreate

DEMO_TEMPLATES = [
    {
        "name": "vLLM Inference Server",
        "image": "vllm/vllm-openai",
        "tag": "latest",
        "env": "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -p 8000:8000",
        "onstart": 'echo "Starting vLLM server"; vllm serve $MODEL_ID',
        "recommended_disk_space": 50,
        "ssh": True,
        "direct": True,
        "private": False,
        "desc": "OpenAI-compatible LLM server",
        "recommended": True,
    },
    {
        "name": "tgi-llama2-7B-quantized",
        "image": "ghcr.io/huggingface/text-generation-inference",
        "tag": "1.0.3",
        "env": "-p 3000:3000 -e MODEL_ARGS='--model-id TheBloke/Llama-2-7B-chat-GPTQ "
        "--quantize gptq'",
        "onstart": "launch_tgi.sh",
        "extra_filters": "gpu_ram>=23 num_gpus=1 gpu_name=RTX_3090 inet_down>128 "
        "direct_port_count>3 disk_space>=192",
        "recommended_disk_space": 8.0,
        "ssh": True,
        "direct": True,
        "private": False,
    },
    {
        "name": "PyTorch notebook",
        "image": "pytorch/pytorch",
        "tag": "2.3.0-cuda12.1-cudnn8-runtime",
        "env": "-p 8888:8888",
        "jupyter": True,
        "direct": True,
        "jupyter_dir": "/workspace",
        "recommended_disk_space": 30,
        "private": False,
    },
    {
        "name": "CUDA dev box",
        "image": "nvidia/cuda",
        "tag": "12.1.0-devel-ubuntu22.04",
        "ssh": True,
        "recommended_disk_space": 20,
        "private": False,
    },
]


def demo_fleet_text() -> str:
    """The demo fleet file shipped with the package."""
    return resources.files("gpuyard.services").joinpath("demo_fleet.yaml").read_text("utf-8")


def load_demo_fleet(session: Session) -> FleetResult:
    """Register (or update, by hostname) the demo machines."""
    return load_fleet(session, parse_yaml(demo_fleet_text(), "demo_fleet.yaml"))


def seed_demo(session: Session) -> tuple[str, int]:
    """Create (or reuse) user ``demo`` with a fresh API key and its public templates, and load
    the demo fleet. Returns the key and the number of templates."""
    user = session.scalar(select(User).where(User.username == "demo"))
    if user is None:
        user, key = create_user(session, "demo")
    else:
        key = add_key(session, user)
    for sample in DEMO_TEMPLATES:
        payload = dict(sample)
        recommended = payload.pop("recommended", False)
        row, _ = create_template(session, user, parse(TemplateCreate, payload))
        if recommended:
            set_recommended(session, row["id"])
    load_demo_fleet(session)
    return key, len(DEMO_TEMPLATES)
