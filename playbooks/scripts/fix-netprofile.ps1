# fleet-script: fix.netprofile
# fleet-version: 1
# Sets an interface's network category (Private or Public; Windows alone sets
# DomainAuthenticated). Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$alias = [string]$p.interface_alias
$category = [string]$p.category
if ($category -ne 'Private' -and $category -ne 'Public') {
    # Set-NetConnectionProfile: "You cannot set the DomainAuthenticated type by using this cmdlet."
    throw "fix.netprofile: category must be Private or Public, not '$category'"
}

function Get-Profile {
    # The profile of exactly this interface (the alias is matched literally, never as a pattern).
    # -ErrorAction: a CDXML command of a script module does not see the script's
    # $ErrorActionPreference ("Modules have their own session state", about_Scopes).
    $found = @(Get-NetConnectionProfile -ErrorAction Stop | Where-Object { $_.InterfaceAlias -eq $alias })
    if ($found.Count -eq 0) { throw "no connection profile for interface '$alias'" }
    return $found[0]
}

$conn = Get-Profile
$before = [string]$conn.NetworkCategory
if ($before -ne $category) {
    Set-NetConnectionProfile -InputObject $conn -NetworkCategory $category -ErrorAction Stop
}
$after = [string](Get-Profile).NetworkCategory
$change = @{ target = "NetConnectionProfile($alias).NetworkCategory"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
