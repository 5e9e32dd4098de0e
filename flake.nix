{
  description = "bottomless: continuous backup of SQLite/libSQL databases to S3";

  inputs = {
    # The native code follows the Zig release that the `ziglang` PyPI package
    # ships (0.17); an older nixpkgs Zig will not build it.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs { inherit system; };

        python = pkgs.python311.withPackages (ps: with ps; [
          boto3
          cffi
          click
          zstandard
          cryptography
          # tests and tooling
          pytest
          hypothesis
          apsw
          moto
          flask # moto's server mode
          flask-cors
          testcontainers
          mypy
          setuptools
          wheel
        ]);

        # Tools every shell and check needs.
        tools = [
          pkgs.zig
          python
          pkgs.sqlite
          pkgs.minio
          pkgs.minio-client
          pkgs.ruff
          pkgs.nodejs # s3rver, the suite's second S3 server (npm)
          pkgs.tcl # testfixture of SQLite's own test suite
        ];
      in
      {
        devShells.default = pkgs.mkShell {
          packages = tools;
          shellHook = ''
            # Use the checkout's sources and the library `zig build` leaves in
            # zig-out/lib (bottomless.extension_path() looks there).
            export PYTHONPATH="$PWD/python''${PYTHONPATH:+:$PYTHONPATH}"
            export ZIG_GLOBAL_CACHE_DIR="''${ZIG_GLOBAL_CACHE_DIR:-$HOME/.cache/zig}"
          '';
        };

        checks.default = pkgs.stdenv.mkDerivation {
          pname = "bottomless-tests";
          version = "0.1.0";
          src = self;
          nativeBuildInputs = tools;
          dontConfigure = true;
          buildPhase = ''
            runHook preBuild
            export HOME=$TMPDIR
            export ZIG_GLOBAL_CACHE_DIR=$TMPDIR/zig-cache
            zig build -Doptimize=ReleaseFast
            runHook postBuild
          '';
          doCheck = true;
          checkPhase = ''
            runHook preCheck
            export PYTHONPATH=$PWD/python
            # What `pip install` would put on PATH as the console script.
            mkdir -p $TMPDIR/bin
            printf '#!%s\nfrom bottomless_cli.main import cli\ncli()\n' \
              "${python}/bin/python" > $TMPDIR/bin/bottomless-cli
            chmod +x $TMPDIR/bin/bottomless-cli
            export PATH=$TMPDIR/bin:$PATH
            # The sandbox has no network; the suite runs its S3 server locally.
            python -m pytest -q tests integration -m 'not slow'
            runHook postCheck
          '';
          installPhase = ''
            mkdir -p $out
            touch $out/passed
          '';
        };

        formatter = pkgs.nixpkgs-fmt;
      });
}
