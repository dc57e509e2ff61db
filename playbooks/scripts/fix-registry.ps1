# fleet-script: fix.registry
# fleet-version: 2
# Sets one value under HKLM. Params: {"path", "name", "value", "type"?: dword (the default) |
# qword | string | expand_string | multi_string}; value null removes it, which is how a
# rollback restores an absent value. Reports the value before and after as gather.ps1 reads
# it (DWORD and QWORD unsigned, REG_EXPAND_SZ unexpanded, REG_MULTI_SZ a list), and "changed"
# when the value or its kind changed. Idempotent: the right value of the right kind is left
# alone. Version 1 wrote DWORDs only.
#   RegistryKey.GetValue(name, default, DoNotExpandEnvironmentNames), GetValueKind,
#   DeleteValue(name, throwOnMissingValue): learn.microsoft.com/dotnet/api/microsoft.win32.registrykey
#   New-ItemProperty -PropertyType (DWord, QWord, String, ExpandString, MultiString):
#   MicrosoftDocs/PowerShell-Docs reference/5.1/Microsoft.PowerShell.Management/New-ItemProperty.md
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$path = [string]$p.path
$name = [string]$p.name
$type = 'dword'
if ($null -ne $p.PSObject.Properties['type'] -and $p.type) { $type = [string]$p.type }
if (-not $path.StartsWith('HKLM:\')) { throw "fix.registry only writes under HKLM:\, not '$path'" }
# An empty name is the key's (Default) value: never what a plan means.
if (-not $name) { throw 'fix.registry: a value name is required' }
$kinds = @('dword', 'qword', 'string', 'expand_string', 'multi_string')
$kindNames = @('DWord', 'QWord', 'String', 'ExpandString', 'MultiString')
$index = [array]::IndexOf($kinds, $type)
if ($index -lt 0) { throw "fix.registry: unknown type '$type'" }
$kind = $kindNames[$index]

function Read-Kind {
    if (-not (Test-Path -LiteralPath $path)) { return $null }
    $key = Get-Item -LiteralPath $path
    if ($null -eq $key.GetValue($name, $null, 'DoNotExpandEnvironmentNames')) { return $null }
    return [string]$key.GetValueKind($name)
}

function Read-Value {
    # As gather.ps1's declared section reads it: GetValue takes the name literally
    # (Get-ItemProperty -Name takes wildcards); only an absent key or value is $null.
    if (-not (Test-Path -LiteralPath $path)) { return $null }
    $key = Get-Item -LiteralPath $path
    $raw = $key.GetValue($name, $null, 'DoNotExpandEnvironmentNames')
    if ($null -eq $raw) { return $null }
    switch ([string]$key.GetValueKind($name)) {
        'DWord' { return [BitConverter]::ToUInt32([BitConverter]::GetBytes([int]$raw), 0) }
        'QWord' { return [BitConverter]::ToUInt64([BitConverter]::GetBytes([long]$raw), 0) }
        'MultiString' { return , @([string[]]$raw) }
        'Binary' { return ([BitConverter]::ToString([byte[]]$raw) -replace '-', '') }
        default { return [string]$raw }
    }
}

function ConvertTo-Data($value) {
    # What New-ItemProperty writes for this kind: a DWORD/QWORD as the signed number of the
    # same bits (the registry API takes Int32/Int64), text as text, a list as [string[]].
    switch ($kind) {
        'DWord' { return [BitConverter]::ToInt32([BitConverter]::GetBytes([uint32]$value), 0) }
        'QWord' { return [BitConverter]::ToInt64([BitConverter]::GetBytes([uint64]$value), 0) }
        'MultiString' { return , [string[]]@($value | ForEach-Object { [string]$_ }) }
        default { return [string]$value }
    }
}

function Get-Same($a, $b) {
    # Value equality across number types and lists, case-sensitive for text.
    return (ConvertTo-Json -InputObject $a -Depth 3 -Compress) -ceq (ConvertTo-Json -InputObject $b -Depth 3 -Compress)
}

$before = Read-Value
$kindBefore = Read-Kind
if ($null -eq $p.value) {
    if ($null -ne $kindBefore) {
        # RegistryKey.DeleteValue takes the name literally; the registry provider's
        # *-ItemProperty -Name may expand wildcards, and "Max*" must never delete several values.
        $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey($path.Substring(6), $true)
        try { $key.DeleteValue($name, $false) } finally { $key.Close() }
    }
} else {
    $wanted = ConvertTo-Data $p.value
    # The wanted value as Read-Value reports one: numbers unsigned (as given), text as text.
    $shown = $wanted
    if ($kind -eq 'DWord' -or $kind -eq 'QWord') { $shown = $p.value }
    if ($kindBefore -ne $kind -or -not (Get-Same $before $shown)) {
        # A REG_SZ "2" where a DWORD is meant is not the value Windows reads: rewrite it.
        if (-not (Test-Path -LiteralPath $path)) { New-Item -Path $path -Force | Out-Null }
        New-ItemProperty -LiteralPath $path -Name $name -Value $wanted -PropertyType $kind -Force | Out-Null
    }
}
$after = Read-Value
$changed = ($kindBefore -ne (Read-Kind)) -or -not (Get-Same $before $after)
$change = @{ target = "$path\$name"; before = $before; after = $after; changed = $changed }
Write-Frame @{ changes = @($change) }
