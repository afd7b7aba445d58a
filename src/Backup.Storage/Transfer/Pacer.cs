namespace Backup.Storage.Transfer;

/// <summary>
/// Keeps a transfer at or below a rate that may change with the time of day (a token bucket of at most one second's
/// worth). Time comes from the given <see cref="TimeProvider"/>, so tests move it by hand.
/// </summary>
public sealed class Pacer(TimeProvider clock, Func<DateTimeOffset, long?> bytesPerSecond)
{
    private static readonly TimeSpan Burst = TimeSpan.FromSeconds(1);
    private DateTimeOffset _sentUpTo = DateTimeOffset.MinValue;

    /// <summary>Accounts for <paramref name="bytes"/> just sent and waits until the rate allows them; no wait without a limit.</summary>
    public async ValueTask PaceAsync(int bytes, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (bytesPerSecond(now) is not { } rate || rate <= 0)
        {
            _sentUpTo = now;
            return;
        }
        // Idle time earns at most one burst: a transfer resuming after a pause does not get to flood the link.
        if (_sentUpTo < now - Burst) _sentUpTo = now - Burst;
        _sentUpTo += TimeSpan.FromSeconds((double)bytes / rate);
        var wait = _sentUpTo - now;
        if (wait > TimeSpan.Zero) await Task.Delay(wait, clock, ct);
    }
}

/// <summary>A read-only stream that hands out its source's bytes no faster than its <see cref="Pacer"/> allows.</summary>
public sealed class PacedStream(Stream source, Pacer pacer) : Stream
{
    private const int Slice = 64 << 10;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => source.Length;
    public override long Position { get => source.Position; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await source.ReadAsync(buffer[..Math.Min(buffer.Length, Slice)], cancellationToken);
        if (read > 0) await pacer.PaceAsync(read, cancellationToken);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) source.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await source.DisposeAsync();
        await base.DisposeAsync();
    }
}
