// A JavaScript function: a global handle(data) gets the input as a string and returns a string.
function handle(data) {
    console.log("echo.js got " + data.length + " characters");   // console.log goes to the log
    return data;
}
