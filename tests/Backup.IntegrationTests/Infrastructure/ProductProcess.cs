using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>One of the product's real processes (API, workers, agent) started from its build output.</summary>
public sealed class ProductProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private ProductProcess(Process process) => _process = process;

    public string Output => string.Join('\n', _output.TakeLast(200));

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <summary>For a one-shot command: waits for it to end and returns its exit code.</summary>
    public async Task<int> ExitCodeAsync(TimeSpan timeout)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(timeout);
        await _process.WaitForExitAsync(limit.Token);
        _process.WaitForExit(); // drains the output handlers
        return _process.ExitCode;
    }

    /// <summary>Asks the process to stop as a service manager does (SIGTERM): the host's graceful shutdown.</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()]) ?? throw new InvalidOperationException("Could not run kill.");
        await kill.WaitForExitAsync();
    }

    /// <summary>Ends the process at once (SIGKILL, <c>kill -9</c>), as a crash or a power cut would; returns once it is gone.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>Waits until the process has written a line containing <paramref name="text"/>.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_output.Any(line => line.Contains(text, StringComparison.Ordinal)))
        {
            if (DateTime.UtcNow > deadline || _process.HasExited)
                throw new TimeoutException($"The process never wrote \"{text}\":\n{Output}");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    public static ProductProcess Start(string project, IDictionary<string, string> environment, params string[] args) =>
        Launch(project, environment, unprivileged: false, args);

    /// <summary>As <see cref="Start"/>, with <paramref name="workingDirectory"/> as the process's working directory (else its program's folder).</summary>
    public static ProductProcess StartIn(string workingDirectory, string project, IDictionary<string, string> environment, params string[] args) =>
        Launch(project, environment, unprivileged: false, args, workingDirectory);

    /// <summary>
    /// Starts the real API on a free port (or at <paramref name="at"/>: a restart) and waits until <c>/health</c> answers 200;
    /// returns it and its base address.
    /// </summary>
    public static async Task<(ProductProcess Api, string BaseUrl)> StartApiAsync(IDictionary<string, string> environment, CancellationToken ct, string? at = null)
    {
        var baseUrl = at ?? $"http://127.0.0.1:{FreePort()}";
        var api = Start("Backup.Api", environment, "--urls", baseUrl);
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
        // Generous: on a machine as busy as a parallel build makes it, starting the API (JIT, the schema) took over a minute.
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            try
            {
                if ((await http.GetAsync("/health", ct)).StatusCode == HttpStatusCode.OK) return (api, baseUrl);
            }
            catch (HttpRequestException)
            {
                // Not listening yet; the deadline and the process's exit are checked below, with its output.
            }
            if (DateTime.UtcNow > deadline || api.HasExited)
            {
                var output = api.Output;
                await api.DisposeAsync();
                throw new InvalidOperationException("The API did not become healthy:\n" + output);
            }
            await Task.Delay(250, ct);
        }
    }

    /// <summary>The build output of a src project, in the same configuration as this test assembly.</summary>
    public static string BuiltDll(string project)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/<Configuration>/net10.0/
        var dll = Path.Combine(TestServices.RepoRoot(), "src", project, "bin", configuration, "net10.0", project + ".dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"{dll} is not built; build Backup.sln first.");
    }

    /// <summary>
    /// Starts <paramref name="project"/> as an unprivileged user: as root (CI), through <c>setpriv</c> as <c>nobody</c>, which
    /// cannot read what only root may; as any other user, as that user, who already cannot.
    /// </summary>
    public static ProductProcess StartUnprivileged(string project, IDictionary<string, string> environment, params string[] args) =>
        Launch(project, environment, unprivileged: Environment.UserName == "root", args);

    /// <summary>
    /// The agent as deployed, a native executable (scripts/publish-agent.sh), when <c>BACKUP_AGENT_EXECUTABLE</c> names it:
    /// scripts/test.sh (CI) publishes it and sets that. Unset (a plain <c>dotnet test</c>), agents run from the build output.
    /// </summary>
    private static string? NativeAgent()
    {
        var path = Environment.GetEnvironmentVariable("BACKUP_AGENT_EXECUTABLE");
        if (string.IsNullOrEmpty(path)) return null;
        return File.Exists(path) ? path : throw new FileNotFoundException($"BACKUP_AGENT_EXECUTABLE names {path}, which does not exist.");
    }

    private static ProductProcess Launch(string project, IDictionary<string, string> environment, bool unprivileged, string[] args, string? workingDirectory = null)
    {
        var native = project == "Backup.Agent" ? NativeAgent() : null;
        var program = native ?? BuiltDll(project);
        var info = new ProcessStartInfo(unprivileged ? "setpriv" : native ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(program)!,
        };
        if (unprivileged) foreach (var a in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", native ?? "dotnet" }) info.ArgumentList.Add(a);
        if (native is null) info.ArgumentList.Add(program);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment) info.Environment[k] = v;
        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        return Attach(Process.Start(info) ?? throw new InvalidOperationException($"Could not start {project}."));
    }

    private static ProductProcess Attach(Process process)
    {
        var product = new ProductProcess(process);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) product._output.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) product._output.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return product;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
