namespace Backup.Commands.Common;

/// <summary>The target of a command does not exist (API: 404).</summary>
public sealed class NotFoundException(string resource, Guid id)
    : Exception($"{resource} '{id}' was not found.")
{
    public string Resource { get; } = resource;
    public Guid Id { get; } = id;
}

/// <summary>
/// The command clashes with the current state (API: 409). <paramref name="code"/>, when given, names the kind of clash for a
/// client that can resolve it itself (the problem's <c>code</c>), e.g. <see cref="Cataloguing.ItemCatalog.BaseChangedCode"/>.
/// </summary>
public sealed class ConflictException(string message, string? code = null) : Exception(message)
{
    public string? Code { get; } = code;
}

/// <summary>The caller proved no valid identity (API: 401).</summary>
public sealed class UnauthenticatedException(string message) : Exception(message);

/// <summary>The caller is known but may not do this (API: 403).</summary>
public sealed class ForbiddenException(string message) : Exception(message);

/// <summary>The request is well-formed but cannot be carried out (API: 422).</summary>
public sealed class UnprocessableException(string message) : Exception(message);

/// <summary>The caller edited a version of the target that is no longer the current one (API: 412).</summary>
public sealed class PreconditionFailedException(string message, long currentVersion) : Exception(message)
{
    public long CurrentVersion { get; } = currentVersion;
}
