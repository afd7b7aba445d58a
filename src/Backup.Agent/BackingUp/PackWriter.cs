using System.Security.Cryptography;
using Backup.Storage.Format;

namespace Backup.Agent.BackingUp;

/// <summary>A slice of a file in a pack that may not be sealed yet; <see cref="PackWriter.Resolve"/> names it later.</summary>
public readonly record struct ProvisionalSegment(int PackSequence, long Offset, long Length);

/// <summary>
/// Appends file bytes to a pack file in the scratch directory and hands each pack to <c>seal</c>
/// (path, pack id, segment count) once it reaches the target size. A file larger than the target spans
/// several packs. Memory stays at one buffer whatever the size of the data.
/// </summary>
public sealed class PackWriter(string scratchDirectory, long targetBytes, Func<string, string, int, Task> seal) : IAsyncDisposable
{
    private readonly byte[] _buffer = new byte[1 << 20];
    private readonly Dictionary<int, string> _sealed = [];
    private FileStream? _pack;
    private string? _packPath;
    private IncrementalHash? _packHash;
    private int _sequence = -1;
    private int _segmentsInPack;
    private bool _broken;

    public int PacksWritten => _sealed.Count;

    /// <summary>Copies <paramref name="input"/> into packs; returns where its bytes went, their SHA-256 and count.</summary>
    public async Task<(IReadOnlyList<ProvisionalSegment> Segments, string Sha256, long Bytes)> AddAsync(Stream input, CancellationToken ct)
    {
        if (_broken) throw new InvalidOperationException("A pack of this run could not be stored; the run cannot continue.");
        using var fileHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var segments = new List<ProvisionalSegment>();
        long total = 0;
        int read;
        while ((read = await input.ReadAsync(_buffer, ct)) > 0)
        {
            fileHash.AppendData(_buffer, 0, read);
            var offset = 0;
            while (offset < read)
            {
                OpenPackIfNeeded();
                var room = (int)Math.Min(read - offset, Math.Max(1, targetBytes - _pack!.Length));
                var start = _pack.Length;
                await _pack.WriteAsync(_buffer.AsMemory(offset, room), ct);
                _packHash!.AppendData(_buffer, offset, room);
                if (segments.Count > 0 && segments[^1].PackSequence == _sequence)
                    segments[^1] = segments[^1] with { Length = segments[^1].Length + room };
                else
                {
                    segments.Add(new ProvisionalSegment(_sequence, start, room));
                    _segmentsInPack++;
                }
                offset += room;
                total += room;
                if (_pack.Length >= targetBytes) await SealAsync(ct);
            }
        }
        return (segments, Convert.ToHexStringLower(fileHash.GetHashAndReset()), total);
    }

    public PackSegment Resolve(ProvisionalSegment segment) =>
        _sealed.TryGetValue(segment.PackSequence, out var id)
            ? new PackSegment(id, segment.Offset, segment.Length)
            : throw new InvalidOperationException("The pack holding this segment has not been sealed; call FlushAsync first.");

    private void OpenPackIfNeeded()
    {
        if (_pack is not null) return;
        _sequence++;
        _packPath = Path.Combine(scratchDirectory, $"pack-{Guid.NewGuid():N}.tmp");
        _pack = new FileStream(_packPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true);
        _packHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        _segmentsInPack = 0;
    }

    private async Task SealAsync(CancellationToken ct)
    {
        var path = _packPath!;
        await _pack!.FlushAsync(ct);
        await _pack.DisposeAsync();
        _pack = null;
        var packId = Convert.ToHexStringLower(_packHash!.GetHashAndReset());
        _packHash.Dispose();
        _packHash = null;
        try
        {
            await seal(path, packId, _segmentsInPack);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _broken = true;
            throw new PackSealException($"Pack {packId} could not be stored: {e.Message}", e);
        }
        finally
        {
            File.Delete(path);
        }
        _sealed[_sequence] = packId;
    }

    /// <summary>Seals the last, partly filled pack. After this every segment resolves.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        if (_pack is null) return;
        if (_pack.Length == 0)
        {
            await _pack.DisposeAsync();
            File.Delete(_packPath!);
            _pack = null;
            return;
        }
        await SealAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_pack is not null)
        {
            await _pack.DisposeAsync();
            File.Delete(_packPath!);
        }
        _packHash?.Dispose();
    }
}

/// <summary>Storing a finished pack failed: the run fails, it is not a problem with the file being read.</summary>
public sealed class PackSealException(string message, Exception inner) : Exception(message, inner);
