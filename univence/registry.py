"""The services a Univence deployment is made of: one entry per service, the one place that says its
name, its default ports, the module that runs it, the install extra it needs and the gRPC services
it serves.

The CLI (`univence up`, `univence serve`), the edge (where each modality listens), the services' own
settings (their default ports) and the deployment files (Kubernetes, Envoy, the container build, checked
by tests/deploy) all read it from here, so adding a modality is one line here and its folder.
`address(name)` is where a service is reached on this machine: the port its own settings give it, so
moving a port (`UNIVENCE_IMAGE_PORT=7101`, or `[image] port = 7101`) moves the service, the edge's
default address for it and the CLI's view of it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from univence.settings import ConfigError, configured

Kind = Literal["platform", "modality", "edge"]
LOCALHOST = "127.0.0.1"
# Hosts a service binds to that name no address to call it at: callers on this machine use LOCALHOST.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True)
class ServiceEntry:
    """One service of the deployment."""

    name: str
    kind: Kind
    # Where it listens by default: the gRPC port (the HTTP port for the edge) and the Prometheus port.
    port: int
    metrics_port: int
    # The module whose main() runs it (`univence serve NAME`, a container's entry point).
    module: str
    # The pyproject extra that installs what it imports (`pip install '.[EXTRA]'`).
    extra: str
    # The gRPC services it serves (full names), besides health, reflection and ServiceInfoService.
    grpc_services: tuple[str, ...] = ()
    # Needs a GPU in the full profile (its Kubernetes Deployment requests one, its image is built on CUDA).
    gpu: bool = False
    # Packages its GPU image installs besides the extra, apart from constraints.txt (they bring their own
    # CUDA torch), e.g. vLLM for the llm service.
    gpu_packages: tuple[str, ...] = ()
    # Packages installed with `pip install --no-deps` beside the extra (images and both README commands):
    # their metadata requires something that breaks this environment (spandrel requires torchvision).
    no_deps_packages: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        """The proto package of its own API (`univence.image.v1`), which Envoy routes on."""
        return self.grpc_services[0].rpartition(".")[0] if self.grpc_services else ""


# Start order: state first, the modalities, the edge last.
SERVICES: tuple[ServiceEntry, ...] = (
    ServiceEntry("accounts", "platform", 50051, 9151, "services.accounts.server", "accounts",
                 ("univence.accounts.v1.AccountsService",)),
    ServiceEntry("media", "platform", 50052, 9152, "services.media.server", "media",
                 ("univence.media.v1.MediaService",)),
    ServiceEntry("image", "modality", 50053, 9153, "services.image.server", "image",
                 ("univence.image.v1.ImageService",), gpu=True),
    ServiceEntry("llm", "modality", 50054, 9154, "services.llm.server", "llm",
                 ("univence.llm.v1.ChatService",), gpu=True, gpu_packages=("vllm",)),
    ServiceEntry("audio", "modality", 50055, 9155, "services.audio.server", "audio",
                 ("univence.audio.v1.VoiceService",), gpu=True),
    ServiceEntry("music", "modality", 50056, 9156, "services.music.server", "music",
                 ("univence.music.v1.MusicService",), gpu=True),
    ServiceEntry("video", "modality", 50057, 9157, "services.video.server", "video",
                 ("univence.video.v1.VideoService",), gpu=True),
    ServiceEntry("vision", "modality", 50058, 9158, "services.vision.server", "vision",
                 ("univence.vision.v1.VisionService",), gpu=True, no_deps_packages=("spandrel==0.4.2",)),
    ServiceEntry("edge", "edge", 8000, 9150, "edge.server", "edge"),
)
BY_NAME: dict[str, ServiceEntry] = {s.name: s for s in SERVICES}
MODALITIES: tuple[str, ...] = tuple(s.name for s in SERVICES if s.kind == "modality")
PLATFORM: tuple[str, ...] = tuple(s.name for s in SERVICES if s.kind == "platform")


def entry(name: str) -> ServiceEntry:
    """The registry entry of `name`; KeyError names the known services."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; one of: {', '.join(BY_NAME)}") from None


def address(name: str) -> str:
    """Where `name` is reached from this machine: the host and port the service itself is configured to
    listen on (`[name] port` in the config file or UNIVENCE_<NAME>_PORT, the same settings its own
    process reads; a wildcard host is reached at 127.0.0.1), else the registry's defaults. So one
    setting moves a service, and the edge's default address for it and the CLI's follow."""
    service = entry(name)
    raw_port = configured(name, "port", service.port)
    try:
        port = int(raw_port)
    except (TypeError, ValueError):
        raise ConfigError(f"the {name} port must be a number, got {raw_port!r}") from None
    host = str(configured(name, "host", LOCALHOST)).strip()
    if host in WILDCARD_HOSTS:
        host = LOCALHOST
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"{host}:{port}"
