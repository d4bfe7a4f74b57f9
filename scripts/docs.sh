#!/usr/bin/env bash
# Renders the Reactor library's API reference (its DocC comments and the catalog
# Sources/Reactor/Reactor.docc, with the "Embedding the reactor" article) as a static site:
#
#   scripts/docs.sh            # -> .build-docs/Reactor (open index.html through any web server)
#
# The DocC plugin is a dependency only while REACTOR_DOCS=1 (Package.swift), in a scratch
# directory of its own, so neither the normal build nor a tool depending on Reactor resolves it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build-docs/Reactor
rm -rf "$out"
REACTOR_DOCS=1 swift package --scratch-path .build-docs/scratch \
    --allow-writing-to-directory "$out" \
    generate-documentation --target Reactor --disable-indexing \
    --transform-for-static-hosting --hosting-base-path Reactor --output-path "$out"
echo "docs: $out/index.html (articles under $out/documentation/reactor/)"
