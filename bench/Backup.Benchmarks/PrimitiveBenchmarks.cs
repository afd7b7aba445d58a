using System.Security.Cryptography;
using Backup.Storage.Blobs;
using Backup.Storage.Chunking;
using Backup.Storage.Compression;
using Backup.Storage.Crypto;
using BenchmarkDotNet.Attributes;

namespace Backup.Benchmarks;

/// <summary>
/// Each benchmark processes the whole 64 MiB input once on one thread, so MB/s is per core. Per-chunk work runs
/// over the FastCDC chunks (512 KiB / 1 MiB / 8 MiB) of the input, as the agent will.
/// </summary>
[Config(typeof(ThroughputConfig))]
public class PrimitiveBenchmarks
{
    private byte[] _data = [];
    private (int Offset, int Length)[] _chunks = [];
    private byte[] _output = [];
    private MasterKeys _keys = null!;
    private ChunkIdHasher _ids = null!;
    private BlobCipher _cipher = null!;
    private ChunkCompressor _zstd = null!;
    private ChunkCompressor _zstd2 = null!;
    private BlobEnvelope _envelope = null!;
    private FastCdcChunker _chunker = null!;
    private (byte[] Blob, ChunkId Id)[] _sealed = [];

    [GlobalSetup]
    public void Setup()
    {
        _data = BenchData.Load();
        var cuts = new List<(int, int)>();
        for (var offset = 0; offset < _data.Length;)
        {
            var length = FastCdc.NextCut(_data.AsSpan(offset), FastCdcParameters.Default);
            cuts.Add((offset, length));
            offset += length;
        }
        _chunks = [.. cuts];
        _output = new byte[BlobEnvelope.MaxSealedLength(FastCdcParameters.Default.MaxSize)];
        _keys = MasterKeys.Generate();
        _ids = _keys.CreateChunkIdHasher();
        _cipher = _keys.CreateCipher();
        _zstd = new ChunkCompressor(3);
        _zstd2 = new ChunkCompressor(2); // the agent's default level (Agent:CompressionLevel)
        _envelope = new BlobEnvelope(_keys);
        _chunker = new FastCdcChunker();
        _sealed = [.. _chunks.Select(c => (_envelope.Seal(_data.AsSpan(c.Offset, c.Length)), _envelope.ComputeId(_data.AsSpan(c.Offset, c.Length))))];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _envelope.Dispose();
        _zstd.Dispose();
        _zstd2.Dispose();
        _cipher.Dispose();
        _keys.Dispose();
    }

    [Benchmark(Description = "FastCDC cut points")]
    public int Chunking()
    {
        var count = 0;
        for (var offset = 0; offset < _data.Length; count++)
            offset += FastCdc.NextCut(_data.AsSpan(offset), FastCdcParameters.Default);
        return count;
    }

    [Benchmark(Description = "FastCDC chunker over a stream")]
    public long ChunkingStream()
    {
        long last = 0;
        foreach (var chunk in _chunker.Chunks(new MemoryStream(_data, writable: false))) last = chunk.Offset;
        return last;
    }

    [Benchmark(Description = "keyed BLAKE3 chunk ids")]
    public ChunkId KeyedBlake3()
    {
        ChunkId id = default;
        foreach (var (offset, length) in _chunks) id = _ids.Compute(_data.AsSpan(offset, length));
        return id;
    }

    [Benchmark(Description = "SHA-256 (per chunk)")]
    public byte Sha256()
    {
        Span<byte> digest = stackalloc byte[32];
        foreach (var (offset, length) in _chunks) SHA256.HashData(_data.AsSpan(offset, length), digest);
        return digest[0];
    }

    [Benchmark(Description = "zstd L3 compress (per chunk)")]
    public long ZstdL3() => Compress(_zstd);

    [Benchmark(Description = "zstd L2 compress (per chunk)")]
    public long ZstdL2() => Compress(_zstd2);

    private long Compress(ChunkCompressor zstd)
    {
        long total = 0;
        foreach (var (offset, length) in _chunks)
            total += zstd.TryCompress(_data.AsSpan(offset, length), _output, out var written) ? written : length;
        return total;
    }

    [Benchmark(Description = "AES-256-GCM seal (per chunk)")]
    public int AesGcmSeal()
    {
        var n = 0;
        foreach (var (offset, length) in _chunks) n = _cipher.Seal(_data.AsSpan(offset, length), _output);
        return n;
    }

    [Benchmark(Description = "envelope seal (zstd-or-raw + AES-GCM)")]
    public long EnvelopeSeal()
    {
        long total = 0;
        foreach (var (offset, length) in _chunks) total += _envelope.Seal(_data.AsSpan(offset, length), _output).Length;
        return total;
    }

    [Benchmark(Description = "envelope open (AES-GCM + unzstd + id check)")]
    public long EnvelopeOpen()
    {
        long total = 0;
        foreach (var (blob, id) in _sealed) total += _envelope.Open(blob, id, _output);
        return total;
    }
}
