# Crisper as a container: the one binary (bun build --compile, with PGlite's
# wasm and the pages' scripts inside it) on a slim Debian.
#   docker build -t crisper .
#   docker run -p 5555:5555 -e BROKER_URL=redis://redis:6379/0 -v crisper:/data crisper
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Bun comes from npm as a dev dependency (pinned in package.json).
RUN npm ci
COPY . .
RUN npx bun build --compile src/cli.ts --outfile /crisper

FROM debian:bookworm-slim
RUN useradd --system --create-home --home-dir /data crisper
COPY --from=build /crisper /usr/local/bin/crisper
USER crisper
WORKDIR /data
# Listen on all interfaces inside the container; the embedded database lives in the volume.
ENV HOST=0.0.0.0 PORT=5555 DATA_DIR=/data
EXPOSE 5555
VOLUME /data
ENTRYPOINT ["crisper"]
CMD ["serve"]
