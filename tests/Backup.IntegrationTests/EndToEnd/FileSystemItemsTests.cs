using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// What a Linux file system holds besides plain files, folders and symlinks, backed up and restored by the real agent process
/// (issue 17 items 4–6): hard links, fifos and device nodes, names that are not UTF-8, sparse files.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class FileSystemItemsTests : IAsyncLifetime
{
    private readonly ProductRun _run = new("fsitems");
    private ApiClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _run.StartApiAsync(new Dictionary<string, string> { ["Backup__RunDaemon"] = "true" });
        _client = _run.Client;
    }

    [Fact]
    public async Task Hard_links_come_back_as_one_file_and_one_member_alone_as_a_plain_file()
    {
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "linked")).FullName;
        Directory.CreateDirectory(Path.Combine(source, "other"));
        File.WriteAllText(Path.Combine(source, "data.txt"), "one file, three names\n");
        await RunAsync("ln", Path.Combine(source, "data.txt"), Path.Combine(source, "other", "alias.txt"));
        await RunAsync("ln", Path.Combine(source, "data.txt"), Path.Combine(source, "third.txt"));
        File.WriteAllText(Path.Combine(source, "solo.txt"), "one file, three names\n"); // same content, its own inode
        var (agent, recoveryPoint) = await BackUpAsync(source);

        var target = Path.Combine(_run.Work.FullName, "relinked");
        var restore = await RestoreAsync(recoveryPoint, target, agent);

        restore.GetProperty("status").GetString().ShouldBe("Completed", restore.ToString() + "\n" + agent.Output);
        var members = new[] { "data.txt", Path.Combine("other", "alias.txt"), "third.txt" }.Select(m => Path.Combine(target, m)).ToList();
        var inodes = new List<string>();
        foreach (var member in members)
        {
            File.ReadAllText(member).ShouldBe("one file, three names\n");
            inodes.Add(await StatAsync("%i %h", member));
        }
        inodes.Distinct().Count().ShouldBe(1, "the three names are one inode again: " + string.Join(", ", inodes));
        inodes[0].Split(' ')[1].ShouldBe("3", "three links");
        (await StatAsync("%h", Path.Combine(target, "solo.txt"))).ShouldBe("1", "a file with the same content is not linked");

        var alone = Path.Combine(_run.Work.FullName, "alone");
        var single = await RestoreAsync(recoveryPoint, alone, agent, ["other/alias.txt"]);
        single.GetProperty("status").GetString().ShouldBe("Completed", single.ToString() + "\n" + agent.Output);
        File.ReadAllText(Path.Combine(alone, "other", "alias.txt")).ShouldBe("one file, three names\n");
        (await StatAsync("%h", Path.Combine(alone, "other", "alias.txt"))).ShouldBe("1");
    }

    [Fact]
    public async Task Fifos_and_device_nodes_are_recreated_with_their_type_mode_and_device_numbers_and_sockets_are_skipped()
    {
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "special")).FullName;
        File.WriteAllText(Path.Combine(source, "plain.txt"), "plain\n");
        await RunAsync("mkfifo", "-m", "0640", Path.Combine(source, "pipe"));
        await RunAsync("mknod", "-m", "0600", Path.Combine(source, "null-again"), "c", "1", "3");
        await RunAsync("mknod", "-m", "0660", Path.Combine(source, "loop-again"), "b", "7", "300");
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified))
        {
            socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(source, "socket")));
            var (agent, recoveryPoint) = await BackUpAsync(source);

            var point = await _client.GetJsonAsync($"/api/recovery-points/{recoveryPoint}");
            point.GetProperty("skipped").EnumerateArray().Select(s => s.GetProperty("path").GetString()).ShouldBe(["socket"], point.ToString());
            var target = Path.Combine(_run.Work.FullName, "special-restored");
            var restore = await RestoreAsync(recoveryPoint, target, agent);

            restore.GetProperty("status").GetString().ShouldBe("Completed", restore.ToString() + "\n" + agent.Output);
            foreach (var name in new[] { "pipe", "null-again", "loop-again" })
                (await StatAsync("%F %t:%T %a", Path.Combine(target, name))).ShouldBe(await StatAsync("%F %t:%T %a", Path.Combine(source, name)), name);
            File.ReadAllText(Path.Combine(target, "plain.txt")).ShouldBe("plain\n");
            Path.Exists(Path.Combine(target, "socket")).ShouldBeFalse();
        }
    }

    [Fact]
    public async Task A_device_node_the_agent_may_not_make_is_a_failed_item_with_the_reason_and_the_rest_is_restored()
    {
        // An agent that is not root may record a device node (lstat) but not make one (mknod needs CAP_MKNOD).
        const UnixFileMode open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        File.SetUnixFileMode(_run.Work.FullName, open);
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "devices")).FullName;
        File.SetUnixFileMode(source, open);
        File.WriteAllText(Path.Combine(source, "plain.txt"), "plain\n");
        File.SetUnixFileMode(Path.Combine(source, "plain.txt"), UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        await RunAsync("mknod", "-m", "0666", Path.Combine(source, "null-again"), "c", "1", "3");
        await RunAsync("mkfifo", "-m", "0644", Path.Combine(source, "pipe"));
        var state = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "agent-state")).FullName;
        File.SetUnixFileMode(state, open);
        File.SetUnixFileMode(_run.PassphraseFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var agent = _run.StartAgent("unprivileged", state, await _client.IssueTokenAsync(), unprivileged: true,
            new Dictionary<string, string> { ["HOME"] = state, ["DOTNET_CLI_HOME"] = state });
        var recoveryPoint = await BackUpAsync(agent, await _run.WaitForAgentAsync("unprivileged", agent), source);
        var target = Path.Combine(_run.Work.FullName, "devices-restored"); // the agent makes it, so it is the agent's

        var restore = await RestoreAsync(recoveryPoint, target, agent);

        restore.GetProperty("status").GetString().ShouldBe("CompletedWithErrors", restore.ToString() + "\n" + agent.Output);
        var failed = restore.GetProperty("failedItems").EnumerateArray().ShouldHaveSingleItem();
        failed.GetProperty("path").GetString().ShouldBe("null-again");
        failed.GetProperty("reason").GetString()!.ShouldContain("not permitted");
        File.ReadAllText(Path.Combine(target, "plain.txt")).ShouldBe("plain\n");
        (await StatAsync("%F", Path.Combine(target, "pipe"))).ShouldBe("fifo", "a fifo needs no privilege");
    }

    [Fact]
    public async Task Names_that_are_not_UTF8_keep_their_exact_bytes_show_escaped_and_restore_by_their_escaped_path()
    {
        try
        {
            await NamesThatAreNotUtf8Async();
        }
        finally
        {
            // .NET cannot remove what it cannot name (the run's cleanup would fail on these): rm takes the bytes.
            foreach (var folder in new[] { "bytes", "bytes-restored", "one-name" })
                await RunAsync("rm", "-rf", Path.Combine(_run.Work.FullName, folder));
        }
    }

    private async Task NamesThatAreNotUtf8Async()
    {
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "bytes")).FullName;
        // A file and a folder (holding a file) whose names hold bytes that are not UTF-8; and a valid name beside them.
        await RunAsync("sh", "-c", "cd \"$1\" && printf 'latin-1\\n' > \"$(printf 'caf\\351.txt')\" && mkdir \"$(printf 'dir-\\377\\376')\" "
            + "&& printf 'inside\\n' > \"$(printf 'dir-\\377\\376/n\\351e')\" && printf 'plain\\n' > plain.txt "
            // A backslash is an ordinary byte of a Linux name (systemd's unit names escape with it).
            + "&& printf 'unit\\n' > 'dev-disk-by\\x2duuid.swap'", "sh", source);
        var (agent, recoveryPoint) = await BackUpAsync(source);

        var point = await _client.GetJsonAsync($"/api/recovery-points/{recoveryPoint}");
        point.GetProperty("skippedItems").GetInt32().ShouldBe(0, point.ToString());
        var items = await _client.GetJsonAsync($"/api/items?under={Uri.EscapeDataString(source)}&limit=100");
        items.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("relativePath").GetString()).Order(StringComparer.Ordinal)
            .ShouldBe(["caf\uFFFDE9.txt", "dev-disk-by\\x2duuid.swap", "dir-\uFFFDFF\uFFFDFE", "dir-\uFFFDFF\uFFFDFE/n\uFFFDE9e", "plain.txt"]);

        var target = Path.Combine(_run.Work.FullName, "bytes-restored");
        var restore = await RestoreAsync(recoveryPoint, target, agent);
        restore.GetProperty("status").GetString().ShouldBe("Completed", restore.ToString() + "\n" + agent.Output);
        (await RawAsync("find", target, "-mindepth", "1", "-printf", "%P\\0")).Split(0).Order(StringComparer.Ordinal).ShouldBe(
            (await RawAsync("find", source, "-mindepth", "1", "-printf", "%P\\0")).Split(0).Order(StringComparer.Ordinal));
        (await RawAsync("sh", "-c", "cat \"$1/$(printf 'dir-\\377\\376/n\\351e')\"", "sh", target)).ShouldBe("inside\n"u8.ToArray());
        (await RawAsync("sh", "-c", "cat \"$1/$(printf 'caf\\351.txt')\"", "sh", target)).ShouldBe("latin-1\n"u8.ToArray());

        var one = Path.Combine(_run.Work.FullName, "one-name");
        var single = await RestoreAsync(recoveryPoint, one, agent, ["caf\uFFFDE9.txt", "dev-disk-by\\x2duuid.swap"]);
        single.GetProperty("status").GetString().ShouldBe("Completed", single.ToString() + "\n" + agent.Output);
        (await RawAsync("find", one, "-mindepth", "1", "-printf", "%P\\0")).Split(0).Order(StringComparer.Ordinal)
            .ShouldBe(new byte[][] { [.. "caf"u8, 0xE9, .. ".txt"u8], [.. "dev-disk-by\\x2duuid.swap"u8] }.Select(Convert.ToHexString).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_sparse_file_is_read_by_its_data_only_and_restores_sparse_and_byte_exact()
    {
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "sparse")).FullName;
        var file = Path.Combine(source, "disk.img");
        var words = "fourteen bytes"u8.ToArray();
        const long size = 1L << 30, at = 700L << 20;
        using (var handle = File.OpenHandle(file, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(handle, size);
            RandomAccess.Write(handle, words, at);
        }
        var agent = _run.StartAgent("fs-machine", Path.Combine(_run.Work.FullName, "agent-state"), await _client.IssueTokenAsync());
        var agentId = await _run.WaitForAgentAsync("fs-machine", agent);
        var readBefore = ReadByAgent(agent);
        var recoveryPoint = await BackUpAsync(agent, agentId, source);
        // rchar: every byte the agent's read calls returned. Reading the holes would be the whole GiB of zeros.
        (ReadByAgent(agent) - readBefore).ShouldBeLessThan(64L << 20, "the agent read the file's holes");

        var target = Path.Combine(_run.Work.FullName, "sparse-restored");
        var restore = await RestoreAsync(recoveryPoint, target, agent);
        restore.GetProperty("status").GetString().ShouldBe("Completed", restore.ToString() + "\n" + agent.Output);
        var restored = Path.Combine(target, "disk.img");
        new FileInfo(restored).Length.ShouldBe(size);
        long.Parse(await StatAsync("%b", restored), CultureInfo.InvariantCulture).ShouldBeLessThan(2048, "at most a MiB allocated (512-byte blocks)");
        using var copy = File.OpenHandle(restored);
        var back = new byte[words.Length];
        RandomAccess.Read(copy, back, at).ShouldBe(words.Length);
        back.ShouldBe(words);
        (await RawAsync("cmp", file, restored)).ShouldBeEmpty("every byte, holes included, is the same");
    }

    private static long ReadByAgent(ProductProcess agent) =>
        long.Parse(File.ReadLines($"/proc/{agent.Id}/io").Single(l => l.StartsWith("rchar:", StringComparison.Ordinal))["rchar:".Length..].Trim(),
            CultureInfo.InvariantCulture);

    private async Task<(ProductProcess Agent, Guid RecoveryPoint)> BackUpAsync(string source)
    {
        var agent = _run.StartAgent("fs-machine", Path.Combine(_run.Work.FullName, "agent-state"), await _client.IssueTokenAsync());
        var agentId = await _run.WaitForAgentAsync("fs-machine", agent);
        return (agent, await BackUpAsync(agent, agentId, source));
    }

    private async Task<Guid> BackUpAsync(ProductProcess agent, Guid agentId, string source)
    {
        var group = await _client.CreateGroupAsync("File systems");
        var recoveryPoint = await _client.RequestBackupAsync(await _client.AddFolderAsync(group, agentId, source));
        var point = await _client.WaitForAsync($"/api/recovery-points/{recoveryPoint}",
            rp => rp.GetProperty("status").GetString() is "Created" or "Failed", TimeSpan.FromSeconds(90));
        point.GetProperty("status").GetString().ShouldBe("Created", point.ToString() + "\n" + agent.Output);
        return recoveryPoint;
    }

    private async Task<JsonElement> RestoreAsync(Guid recoveryPoint, string target, ProductProcess agent, string[]? paths = null)
    {
        var response = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{recoveryPoint}/restores",
            paths is null ? new { source = "Disk", targetPath = target } : (object)new { source = "Disk", targetPath = target, paths }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        var id = await ApiClient.IdAsync(response);
        try
        {
            return await _client.WaitForAsync($"/api/restores/{id}",
                r => r.GetProperty("status").GetString() is "Completed" or "CompletedWithErrors" or "Failed", TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + agent.Output, e);
        }
    }

    /// <summary>stat(1) of the path itself (not a symlink's target), in <paramref name="format"/>.</summary>
    private static async Task<string> StatAsync(string format, string path) =>
        Encoding.UTF8.GetString(await RawAsync("stat", "-c", format, path)).Trim();

    /// <summary>A program's standard output as bytes: names that are not UTF-8 stay as they are.</summary>
    private static async Task<byte[]> RawAsync(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        using var output = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(output, Ct);
        var error = await process.StandardError.ReadToEndAsync(Ct);
        await copy;
        await process.WaitForExitAsync(Ct);
        process.ExitCode.ShouldBe(0, $"{program} {string.Join(' ', args)}: {error}");
        return output.ToArray();
    }

    private static Task RunAsync(string program, params string[] args) => RawAsync(program, args);

    public ValueTask DisposeAsync() => _run.DisposeAsync();
}

internal static class ByteListing
{
    /// <summary>NUL-separated names (find -printf '%P\0'), each as its bytes in hex, so lists compare by their exact bytes.</summary>
    public static IEnumerable<string> Split(this byte[] listing, byte separator) =>
        listing.Length == 0 ? [] : Encoding.Latin1.GetString(listing).TrimEnd((char)separator).Split((char)separator).Select(n => Convert.ToHexString(Encoding.Latin1.GetBytes(n)));
}
