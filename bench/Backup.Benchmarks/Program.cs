using Backup.Benchmarks;
using BenchmarkDotNet.Running;

// `--make-data PATH` writes the benchmark input so that openssl and zstd can time the very same bytes.
if (args is ["--make-data", var path])
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    File.WriteAllBytes(path, BenchData.Make());
    Console.WriteLine($"wrote {BenchData.Length} bytes to {path}");
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(PrimitiveBenchmarks).Assembly).Run(args);
