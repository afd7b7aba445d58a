using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;
using Backup.Storage.Blobs;
using Backup.Storage.Crypto;
using Backup.Storage.Format;

namespace Backup.Agent.BackingUp;

/// <summary>Stores one finished pack (a file in scratch space) on the server; the pipeline deletes the file afterwards.</summary>
public delegate Task UploadPack(string path, string packId, int chunkCount, CancellationToken ct);

/// <summary>What the pipeline did: chunks it saw, chunks it sealed and packed, bytes before and after sealing.</summary>
public sealed record PipelineTotals(int ChunksSeen, int ChunksNew, long PlainBytesNew, long SealedBytesNew, int Packs, long PackBytes)
{
    /// <summary>
    /// Where the stages waited for the next one (seconds): the reader for a sealer, the sealers for the packer, the packer for
    /// an uploader; and the uploads' own time. The stage that does not wait is the one that sets the pace.
    /// </summary>
    public StageWaits Waits { get; init; } = new(0, 0, 0, 0);
}

public sealed record StageWaits(double ReaderWaitedForSealers, double SealersWaitedForPacker, double PackerWaitedForUploaders, double UploadSeconds);

/// <summary>
/// The write side of a backup: chunk ids are computed by the caller's thread (the reader) as it adds chunks;
/// chunks the server does not hold yet go through a bounded channel to one sealing worker per core (zstd, then
/// AES-256-GCM), then to a single packer that fills packs of <c>packTarget</c> bytes in scratch space, then to an
/// two uploaders that send packs while the next fills. Every channel is bounded, so memory stays at a few chunks
/// per stage whatever the size of the data set. The first failure of any stage stops all of them and is
/// rethrown by <see cref="AddAsync"/> or <see cref="CompleteAsync"/>.
/// </summary>
public sealed class ChunkPipeline : IAsyncDisposable
{
    private readonly record struct Plain(ChunkId Id, byte[] Buffer, int Length);
    private readonly record struct Sealed(ChunkId Id, byte[] Buffer, int Length, int PlainLength);
    private readonly record struct Finished(string Path, string PackId, int Chunks, long Bytes);

    private readonly ChunkIdHasher _ids;
    private readonly ISet<ChunkId> _known;
    private readonly string _scratch;
    private readonly long _packTarget;
    private readonly UploadPack _upload;
    private readonly CancellationTokenSource _stop;
    private readonly Channel<Plain> _toSeal;
    private readonly Channel<Sealed> _toPack;
    private readonly Channel<Finished> _toUpload;
    private readonly Task _sealers;
    private readonly Task _packer;
    private readonly Task _uploaders;
    private readonly HashSet<ChunkId> _queued = [];

    // A private pool, bounded per size and free for the GC once the run ends: the shared pool would keep buffers in
    // every thread the async stages ran on, and the run's peak memory with them.
    private readonly ArrayPool<byte> _pool;
    private readonly int _workers;
    private Exception? _failure;
    private int _chunksSeen, _chunksNew, _packs;
    private long _plainNew, _sealedNew, _packBytes;
    private long _readerWaits, _sealerWaits, _packerWaits, _uploadTicks; // Stopwatch ticks
    private bool _completed;

    /// <param name="known">Chunk ids the server already holds; the pipeline adds the ones it packs.</param>
    public ChunkPipeline(MasterKeys keys, ISet<ChunkId> known, string scratch, long packTarget, UploadPack upload, int? sealers = null, CancellationToken ct = default)
    {
        _ids = keys.CreateChunkIdHasher();
        _known = known;
        _scratch = scratch;
        _packTarget = packTarget;
        _upload = upload;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var workers = _workers = Math.Max(1, sealers ?? Environment.ProcessorCount);
        _pool = ArrayPool<byte>.Create(maxArrayLength: 16 << 20, maxArraysPerBucket: workers * 4 + 2);
        _toSeal = Channel.CreateBounded<Plain>(new BoundedChannelOptions(workers) { SingleWriter = true });
        _toPack = Channel.CreateBounded<Sealed>(new BoundedChannelOptions(workers) { SingleReader = true });
        // Two uploads in flight: the server's hash, write and fsync of one pack overlap the transfer of the next.
        _toUpload = Channel.CreateBounded<Finished>(new BoundedChannelOptions(1) { SingleWriter = true });
        _sealers = Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(() => SealAsync(keys))));
        _packer = Task.Run(PackAsync);
        _uploaders = Task.WhenAll(Task.Run(UploadAsync), Task.Run(UploadAsync));
    }

    /// <summary>Computes the chunk's id and queues it for storing unless the server or this run already has it.</summary>
    public async ValueTask<ChunkId> AddAsync(ReadOnlyMemory<byte> chunk)
    {
        ThrowIfFailed();
        var id = _ids.Compute(chunk.Span);
        _chunksSeen++;
        if (_known.Contains(id) || !_queued.Add(id)) return id;
        var buffer = _pool.Rent(chunk.Length);
        chunk.CopyTo(buffer);
        try
        {
            var item = new Plain(id, buffer, chunk.Length);
            if (!_toSeal.Writer.TryWrite(item))
            {
                var waiting = Stopwatch.GetTimestamp();
                await _toSeal.Writer.WriteAsync(item, _stop.Token);
                _readerWaits += Stopwatch.GetTimestamp() - waiting;
            }
        }
        catch (OperationCanceledException) when (_failure is not null)
        {
            _pool.Return(buffer);
            ThrowIfFailed();
        }
        return id;
    }

    /// <summary>Seals what is queued, packs and uploads the last pack, and returns the totals.</summary>
    public async Task<PipelineTotals> CompleteAsync()
    {
        ThrowIfFailed();
        _completed = true;
        _toSeal.Writer.TryComplete();
        try
        {
            await Task.WhenAll(_sealers, _packer, _uploaders).ConfigureAwait(false);
        }
        finally
        {
            while (_toUpload.Reader.TryRead(out var left)) TryDelete(left.Path);
        }
        ThrowIfFailed();
        foreach (var id in _queued) _known.Add(id);
        static double Seconds(long ticks) => Math.Round((double)ticks / Stopwatch.Frequency, 2);
        return new PipelineTotals(_chunksSeen, _chunksNew, _plainNew, _sealedNew, _packs, _packBytes)
        {
            Waits = new StageWaits(Seconds(_readerWaits), Seconds(_sealerWaits), Seconds(_packerWaits), Seconds(_uploadTicks)),
        };
    }

    private async Task SealAsync(MasterKeys keys)
    {
        try
        {
            using var envelope = new BlobEnvelope(keys);
            await foreach (var plain in _toSeal.Reader.ReadAllAsync(_stop.Token))
            {
                if (_stop.IsCancellationRequested)
                {
                    _pool.Return(plain.Buffer);
                    break;
                }
                byte[]? output = null;
                try
                {
                    output = _pool.Rent(BlobEnvelope.MaxSealedLength(plain.Length));
                    var blob = envelope.Seal(plain.Buffer.AsSpan(0, plain.Length), output);
                    var item = new Sealed(plain.Id, output, blob.Length, plain.Length);
                    if (!_toPack.Writer.TryWrite(item))
                    {
                        var waiting = Stopwatch.GetTimestamp();
                        await _toPack.Writer.WriteAsync(item, _stop.Token);
                        Interlocked.Add(ref _sealerWaits, Stopwatch.GetTimestamp() - waiting);
                    }
                    output = null;
                }
                finally
                {
                    _pool.Return(plain.Buffer);
                    if (output is not null) _pool.Return(output);
                }
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            // The last sealer to finish closes the packer's input.
            if (Interlocked.Increment(ref _sealersDone) == _workers) _toPack.Writer.TryComplete();
        }
    }

    private int _sealersDone;

    private async Task PackAsync()
    {
        PackBuilder? pack = null;
        try
        {
            await foreach (var blob in _toPack.Reader.ReadAllAsync(_stop.Token))
            {
                if (_stop.IsCancellationRequested)
                {
                    _pool.Return(blob.Buffer);
                    break;
                }
                try
                {
                    pack ??= new PackBuilder(Path.Combine(_scratch, $"pack-{Guid.NewGuid():N}.tmp"));
                    pack.Add(blob.Id, blob.Buffer.AsSpan(0, blob.Length), blob.PlainLength);
                    Interlocked.Increment(ref _chunksNew);
                    Interlocked.Add(ref _plainNew, blob.PlainLength);
                    Interlocked.Add(ref _sealedNew, blob.Length);
                }
                finally
                {
                    _pool.Return(blob.Buffer);
                }
                if (pack.Length >= _packTarget)
                {
                    await FinishAsync(pack);
                    pack = null;
                }
            }
            if (pack is not null)
            {
                await FinishAsync(pack);
                pack = null;
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            if (pack is not null)
            {
                await pack.DisposeAsync();
                TryDelete(pack.Path);
            }
            _toUpload.Writer.TryComplete();
        }
    }

    private async Task FinishAsync(PackBuilder pack)
    {
        var (packId, bytes) = await pack.FinishAsync(_stop.Token);
        var count = pack.Count;
        await pack.DisposeAsync();
        var waiting = Stopwatch.GetTimestamp();
        await _toUpload.Writer.WriteAsync(new Finished(pack.Path, packId, count, bytes), _stop.Token);
        _packerWaits += Stopwatch.GetTimestamp() - waiting;
    }

    private async Task UploadAsync()
    {
        try
        {
            await foreach (var finished in _toUpload.Reader.ReadAllAsync(_stop.Token))
            {
                // ReadAllAsync hands out what is already queued without looking at the token again: after a failure
                // elsewhere, nothing more is sent.
                if (_stop.IsCancellationRequested)
                {
                    TryDelete(finished.Path);
                    break;
                }
                try
                {
                    var started = Stopwatch.GetTimestamp();
                    await _upload(finished.Path, finished.PackId, finished.Chunks, _stop.Token);
                    Interlocked.Add(ref _uploadTicks, Stopwatch.GetTimestamp() - started);
                    Interlocked.Increment(ref _packs);
                    Interlocked.Add(ref _packBytes, finished.Bytes);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new PackSealException($"Pack {finished.PackId} could not be stored: {e.Message}", e);
                }
                finally
                {
                    TryDelete(finished.Path);
                }
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            // Packs finished but never uploaded (after a failure) are scratch files only.
            while (_toUpload.Reader.TryRead(out var left)) TryDelete(left.Path);
        }
    }

    private void Fail(Exception e)
    {
        if (e is OperationCanceledException && _stop.IsCancellationRequested && _failure is null && !_completed) return;
        if (e is OperationCanceledException && _failure is not null) return;
        Interlocked.CompareExchange(ref _failure, e, null);
        _stop.Cancel();
    }

    private void ThrowIfFailed()
    {
        if (_failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_failure);
        _stop.Token.ThrowIfCancellationRequested();
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Scratch space; the next run's cleanup removes what is left.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await _stop.CancelAsync();
        _toSeal.Writer.TryComplete();
        try
        {
            await Task.WhenAll(_sealers, _packer, _uploaders).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Already recorded as the failure, or cancellation after the run ended.
        }
        while (_toSeal.Reader.TryRead(out var plain)) _pool.Return(plain.Buffer);
        while (_toPack.Reader.TryRead(out var blob)) _pool.Return(blob.Buffer);
        // Every stage has stopped: a pack the packer finished while the uploaders were already leaving is scratch only.
        while (_toUpload.Reader.TryRead(out var left)) TryDelete(left.Path);
        _stop.Dispose();
    }
}

/// <summary>Storing a finished pack failed: the run fails, it is not a problem with the file being read.</summary>
public sealed class PackSealException(string message, Exception inner) : Exception(message, inner);
