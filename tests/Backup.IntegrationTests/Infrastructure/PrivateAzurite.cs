using System.Diagnostics;
using System.Net.Sockets;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>
/// An Azurite process of a test's own (from the npm install scripts/services.sh made), so a test can take
/// the vault away and bring it back without disturbing the shared one.
/// </summary>
public sealed class PrivateAzurite : IAsyncDisposable
{
    private readonly string _location = Directory.CreateTempSubdirectory("azurite-").FullName;
    private Process? _process;

    public int Port { get; } = ProductProcess.FreePort();

    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:{Port}/devstoreaccount1;";

    public async Task StartAsync()
    {
        var bin = Path.Combine(TestServices.RepoRoot(), ".local", "node", "node_modules", ".bin", "azurite-blob");
        if (!File.Exists(bin)) throw new FileNotFoundException("Azurite is not installed; run scripts/services.sh up.", bin);
        var info = new ProcessStartInfo(bin) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--blobHost", "127.0.0.1", "--blobPort", Port.ToString(), "--location", _location, "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry" })
            info.ArgumentList.Add(a);
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        throw new TimeoutException($"Azurite did not listen on {Port}.");
    }

    /// <summary>
    /// The vault goes away (SIGTERM: connections drop, what Azurite acknowledged stays stored, as with a real
    /// outage; SIGKILL would lose Azurite's unsaved metadata, which Azure itself never does).
    /// </summary>
    public async Task StopAsync()
    {
        if (_process is null || _process.HasExited) return;
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()])) await kill.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_location, recursive: true);
    }
}
