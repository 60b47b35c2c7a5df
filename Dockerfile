# edgeproxy behind a CDN: docker build -t edgeproxy . && docker run -p 8080:8080 \
#   -e EDGEPROXY_SIGNING_KEY=... -e EDGEPROXY_ORIGINS='{"media":"/images"}' -v /srv/images:/images:ro edgeproxy
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY edgeproxy ./edgeproxy
RUN pip install --no-cache-dir . && useradd --system --uid 10001 edgeproxy
USER edgeproxy
EXPOSE 8080
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
CMD ["edgeproxy", "serve", "--host", "0.0.0.0", "--port", "8080"]
