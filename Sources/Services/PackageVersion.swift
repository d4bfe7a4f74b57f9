// The version every executable of the package reports (`--version`, INFO `reactord_version`).
// Here, the lowest layer reactord, reactor-cli and kvbench all import, so there is one number.

/// This package's version.
public enum PackageVersion {
    public static let current = "0.1.0"
}
