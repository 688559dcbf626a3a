"""Exit 0 when the app answers on this machine, 1 otherwise (Docker's HEALTHCHECK, a load balancer's probe).

It asks Streamlit's own health endpoint, which answers "ok" once the server accepts sessions.
    python scripts/healthcheck.py [PORT]
"""
import sys
import urllib.request

port = sys.argv[1] if len(sys.argv) > 1 else "8501"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as response:
        healthy = response.status == 200 and response.read().strip() == b"ok"
except OSError:
    healthy = False
sys.exit(0 if healthy else 1)
