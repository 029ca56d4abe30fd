# kmigrate as a container image: one static binary on an empty base.
#
#   docker buildx build -t kmigrate .                      # or: kmigrate build -t kmigrate .
#   docker run --rm -v "$PWD:/repo" kmigrate check        # lint the current directory
#
# The binary is linked statically against glibc (`+crt-static`), so the image
# needs no libc. It leaves out the Docker Engine backend of `verify`
# (`--no-default-features`): an image has no Docker socket to talk to.
#
# To package a static binary built elsewhere instead of compiling it here, put
# it in an otherwise empty directory as `kmigrate` and build that directory:
#   docker buildx build --build-arg BINARY_FROM=prebuilt -f Dockerfile -t kmigrate DIR
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG BINARY_FROM=compile

FROM ${RUST_IMAGE} AS compile
WORKDIR /src
COPY . .
# --target keeps build scripts and proc macros dynamic; only kmigrate is static.
RUN target="$(rustc -vV | sed -n 's/^host: //p')" \
 && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --no-default-features --target "$target" \
 && install -m 0755 "target/$target/release/kmigrate" /kmigrate

FROM scratch AS prebuilt
COPY --chmod=0755 kmigrate /kmigrate

FROM ${BINARY_FROM} AS binary

FROM scratch
COPY --from=binary /kmigrate /kmigrate
WORKDIR /repo
ENTRYPOINT ["/kmigrate"]
CMD ["check", "."]
