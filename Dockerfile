# The gateway image: one image, run in several roles (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY web web
COPY rules rules
COPY templates templates
RUN pip install --no-cache-dir -e '.[postgres]'
ENV CLIENTTRACK_DATA_DIR=/data
# Private, as the gateway insists at start (a new volume copies this mode).
RUN mkdir -m 700 /data
VOLUME /data
EXPOSE 2525 8000
ENTRYPOINT ["clienttrack"]
CMD ["serve"]
