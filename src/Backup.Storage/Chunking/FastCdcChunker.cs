
namespace Backup.Storage.Chunking;

/// <summary>
/// One chunk of a stream. <see cref="Data"/> points into the chunker's buffer and is valid only until the
/// enumeration moves on: hash, compress or copy it before asking for the next chunk.
/// </summary>
public readonly record struct Chunk(long Offset, ReadOnlyMemory<byte> Data)
{
    public int Length => Data.Length;
}

/// <summary>
/// Cuts a stream into FastCDC chunks through one reusable buffer of
/// <see cref="FastCdcParameters.MaxSize"/> + <c>readSize</c> bytes: no allocation per chunk, and memory
/// independent of the stream's length. Reuse one instance for many streams, one stream at a time (not
/// thread-safe); give each pipeline worker its own.
/// </summary>
public sealed class FastCdcChunker
{
    private readonly byte[] _buffer;
    private bool _busy;

    /// <param name="readSize">
    /// Bytes read ahead beyond one maximal chunk. A refill happens when the next cut needs bytes not read yet, and moves
    /// only that unfinished tail to the front (on average about half a chunk per buffer of reading). Defaults to the
    /// maximum chunk size.
    /// </param>
    public FastCdcChunker(FastCdcParameters? parameters = null, int? readSize = null)
    {
        Parameters = parameters ?? FastCdcParameters.Default;
        var ahead = readSize ?? Parameters.MaxSize;
        ArgumentOutOfRangeException.ThrowIfLessThan(ahead, 4096, nameof(readSize));
        _buffer = GC.AllocateUninitializedArray<byte>(checked(Parameters.MaxSize + ahead));
    }

    public FastCdcParameters Parameters { get; }

    /// <summary>The chunker's whole working memory, in bytes.</summary>
    public int BufferSize => _buffer.Length;

    public IEnumerable<Chunk> Chunks(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Iterate(stream);

        IEnumerable<Chunk> Iterate(Stream s)
        {
            Enter();
            try
            {
                var state = new Window();
                while (true)
                {
                    var cut = state.Available == 0 ? 0 : FastCdc.NextCut(_buffer.AsSpan(state.Start, state.Available), Parameters);
                    // A cut found before the end of the buffered bytes, or at the maximum size, is the cut more bytes would
                    // give too (NextCut scans left to right); only a cut at the end of what is buffered may need more. So
                    // the buffer is refilled only then, and the bytes moved to its front are the short unfinished tail,
                    // not up to a maximal chunk's worth before every refill.
                    if (!state.Eof && (state.Available == 0 || (cut == state.Available && cut < Parameters.MaxSize)))
                    {
                        state.Compact(_buffer);
                        while (state.End < _buffer.Length && !state.Eof)
                        {
                            var read = s.Read(_buffer, state.End, _buffer.Length - state.End);
                            if (read == 0) state.Eof = true;
                            else state.End += read;
                        }
                        continue;
                    }
                    if (state.Available == 0) yield break;
                    yield return state.Take(_buffer, cut);
                }
            }
            finally
            {
                _busy = false;
            }
        }
    }

    private void Enter()
    {
        if (_busy) throw new InvalidOperationException("This chunker is already cutting a stream; use one chunker per stream at a time.");
        _busy = true;
    }

    /// <summary>Unconsumed bytes are _buffer[Start..End]; Position is the stream offset of Start.</summary>
    private sealed class Window
    {
        public int Start;
        public int End;
        public long Position;
        public bool Eof;

        public int Available => End - Start;

        public void Compact(byte[] buffer)
        {
            if (Start == 0) return;
            Buffer.BlockCopy(buffer, Start, buffer, 0, Available);
            End -= Start;
            Start = 0;
        }

        public Chunk Take(byte[] buffer, int length)
        {
            var chunk = new Chunk(Position, buffer.AsMemory(Start, length));
            Start += length;
            Position += length;
            return chunk;
        }
    }
}
