# syntax=docker/dockerfile:1
# fathom's container images: two targets of one multi-stage file, both on Debian 12 and both built with the
# project's own scripts/install-deps.sh (docs/operations.md#containers):
#   docker build --target cpu -t fathom:cpu .
#   docker build --target gpu -t fathom:gpu .   # CUDA 13 from NVIDIA's Debian 12 repository; sm_90 by default
#                                               # (--build-arg CUDA_ARCHITECTURES="80;90")
# Contract of both images: fathom runs as the unprivileged user `fathom` (uid 10001); ENTRYPOINT is the
# fathom executable; the Hugging Face cache lives under the volume /models (HF_HOME=/models/hf, so
# HF_HUB_CACHE=/models/hf/hub: `--model ORG/NAME` hub downloads land there); the health check asks
# http://127.0.0.1:8000/health, so serve on port 8000 (`serve --host 0.0.0.0 --port 8000`, or the config's
# [server] port). tests/deploy/check_dockerfile.py lints this file; check_runtime_libs.py checks that the
# runtime stages' packages provide every shared library the fathom executable links.

# Pinned to a Debian point release; override with --build-arg DEBIAN_IMAGE=debian:12.X-slim@sha256:...
ARG DEBIAN_IMAGE=debian:12.11-slim

# ---- build stages: compile the fathom executable only (no tests, benchmarks or example plugins) ----
FROM ${DEBIAN_IMAGE} AS build-cpu
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt CMakeLists.txt
COPY src src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFATHOM_WITH_CUDA=OFF \
      -DFATHOM_BUILD_TESTS=OFF -DFATHOM_BUILD_BENCH=OFF -DFATHOM_BUILD_EXAMPLES=OFF \
 && cmake --build build --target fathom \
 && install -D -m 0755 build/fathom /out/fathom

FROM ${DEBIAN_IMAGE} AS build-gpu
ARG CUDA_ARCHITECTURES=90
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build-only --cuda && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt CMakeLists.txt
COPY src src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFATHOM_WITH_CUDA=ON \
      -DCMAKE_CUDA_COMPILER=/usr/local/cuda-13.0/bin/nvcc -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
      -DFATHOM_BUILD_TESTS=OFF -DFATHOM_BUILD_BENCH=OFF -DFATHOM_BUILD_EXAMPLES=OFF \
 && cmake --build build --target fathom \
 && install -D -m 0755 build/fathom /out/fathom

# ---- runtime bases: the shared libraries only ----
FROM ${DEBIAN_IMAGE} AS runtime-cpu-base
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh

# The CUDA 13 runtime base: cudart and cuBLAS from NVIDIA's Debian 12 repository (nvidia/cuda images are
# Ubuntu- or UBI-based, whose library packages differ from the Debian 12 ones fathom is built against).
# The driver libraries are mounted by the NVIDIA container toolkit, which reads the two NVIDIA_ variables.
FROM ${DEBIAN_IMAGE} AS runtime-gpu-base
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --runtime --cuda && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && echo /usr/local/cuda-13.0/targets/x86_64-linux/lib > /etc/ld.so.conf.d/fathom-cuda.conf && ldconfig
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility

# ---- final images (the two tails are identical on purpose; check_dockerfile.py enforces it) ----
FROM runtime-cpu-base AS cpu
COPY --from=build-cpu /out/fathom /usr/local/bin/fathom
RUN groupadd --system --gid 10001 fathom \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/fathom --create-home fathom \
 && mkdir -p /models/hf/hub && chown -R fathom:fathom /models
ENV HF_HOME=/models/hf HF_HUB_CACHE=/models/hf/hub
VOLUME ["/models"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=300s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/health"]
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/fathom"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

FROM runtime-gpu-base AS gpu
COPY --from=build-gpu /out/fathom /usr/local/bin/fathom
RUN groupadd --system --gid 10001 fathom \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/fathom --create-home fathom \
 && mkdir -p /models/hf/hub && chown -R fathom:fathom /models
ENV HF_HOME=/models/hf HF_HUB_CACHE=/models/hf/hub
VOLUME ["/models"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=300s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/health"]
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/fathom"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
